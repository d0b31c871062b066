"""How long a run takes to fail when Powens is unreachable (connection refused), measured where
the user stands: `dagster asset materialize` of one sync against a closed port.

    python -m benchmarks.unreachable_powens

Prints the command's wall time and the run's own time (RUN_START to RUN_FAILURE, from the log).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from pfo_pipeline import settings
from pfo_pipeline.lake import LakeLocation


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stamp(line: str) -> datetime:
    return datetime.strptime(re.sub(r"\x1b\[[0-9;]*m", "", line)[:19], "%Y-%m-%d %H:%M:%S")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {
            **os.environ,
            **settings.DEMO_ENV,
            **LakeLocation.in_folder(Path(tmp) / "ledger").env(),
            "DAGSTER_HOME": str(home),
            "PFO_TENANTS_FILE": str(settings.SAMPLE_TENANTS_FILE),
            settings.BASE_URL_ENV: f"http://127.0.0.1:{_closed_port()}/2.0",
        }
        dagster = str(Path(sys.executable).parent / "dagster")
        started = time.monotonic()
        done = subprocess.run(
            [dagster, "asset", "materialize", "-m", "pfo_pipeline.definitions",
             "--select", "bank_accounts", "--partition", "tenant.family-office"],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        wall = time.monotonic() - started
    lines = (done.stdout + done.stderr).splitlines()
    start = next(_stamp(line) for line in lines if "RUN_START" in line)
    end = next(_stamp(line) for line in lines if "RUN_FAILURE" in line)
    attempts = sum(
        'STEP_START - Started execution of step "bank_accounts"' in line for line in lines
    )
    print(f"exit status {done.returncode}; step attempts {attempts}")
    print(
        f"command wall time {wall:.1f} s; run (RUN_START to RUN_FAILURE) {(end - start).seconds} s"
    )


if __name__ == "__main__":
    main()
