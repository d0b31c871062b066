"""The git-ignored `.env` that `scripts/_setup.sh` writes: the emulator's demo credentials only.

`dg dev` / `dagster dev` read `.env` from their working directory and let it override the
environment, so this file holds nothing but the demo variables (`PFO_DEMO_POWENS_*`), which only the
sample tenants file names: real credentials, exported in the shell or a secret store, are never
replaced by it. A `.env` written by an older set-up held the demo values under the real names
(`PFO_POWENS_CLIENT_ID=pfo-demo-client`, …), which silently replaced real credentials: those lines
are moved to the demo names; every other line is kept as written.

    python -m pfo_pipeline.demo_dotenv PATH
"""

from __future__ import annotations

import sys
from pathlib import Path

from pfo_pipeline.settings import DEMO_ENV

HEADER = """\
# Written by scripts/_setup.sh (git ignores this file). The Powens emulator's DEMO values only, under
# names only the sample tenants file uses. Dagster's CLI (dg, dagster) lets this file override your
# environment: never put a variable here that you also export (real credentials belong in your
# environment or secret store, named by your own tenants file).
"""
# What older set-ups wrote: the demo values under the real variables' names.
LEGACY_DEMO_LINES = {
    "PFO_POWENS_CLIENT_ID=pfo-demo-client",
    "PFO_POWENS_CLIENT_SECRET=pfo-demo-secret",
    "PFO_POWENS_WEBHOOK_SECRET=pfo-demo-webhook-secret",
}


def write_demo_dotenv(path: Path) -> list[str]:
    """Create or bring up to date the demo `.env` at `path`; returns what changed in an existing
    file, in words (nothing for a new one)."""
    demo_lines = [f"{name}={value}" for name, value in DEMO_ENV.items()]
    if not path.exists():
        path.write_text(HEADER + "\n".join(demo_lines) + "\n", encoding="utf-8")
        return []  # a fresh set-up says nothing
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() not in LEGACY_DEMO_LINES]
    changes = []
    if len(kept) != len(lines):
        changes.append(
            f"{path}: moved the emulator's demo credentials from PFO_POWENS_* (the names real "
            "credentials use) to PFO_DEMO_POWENS_*"
        )
    defined = {line.split("=", 1)[0].strip() for line in kept if "=" in line}
    missing = [line for line in demo_lines if line.split("=", 1)[0] not in defined]
    if missing and not changes:
        changes.append(
            f"{path}: added the demo variables {', '.join(m.split('=')[0] for m in missing)}"
        )
    if changes:
        path.write_text("\n".join([*kept, *missing]) + "\n", encoding="utf-8")
    return changes


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pfo_pipeline.demo_dotenv PATH", file=sys.stderr)
        return 2
    for change in write_demo_dotenv(Path(argv[0])):
        print(f"pfo setup: {change}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
