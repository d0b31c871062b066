"""Process-level settings read from the environment, in one place so every entry point agrees.

One settings story for every command: a variable set in the environment wins; a `.env` file in
the working directory fills in only what the environment does not set (the `pfo` commands load
it with `load_dotenv_file`). Dagster's CLI (`dg`, `dagster`) reads the same `.env` but lets it
override the environment, so the project keeps nothing there that a real set-up also sets: the
`.env` written by `scripts/_setup.sh` holds only the emulator's demo credentials, under names of
their own (`PFO_DEMO_POWENS_*`) that only the sample tenants file names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# dbt runs from an environment of its own (dbt_project/requirements.txt): the one
# scripts/_setup.sh builds here, or wherever `PFO_DBT_EXECUTABLE` points.
DBT_ENV_DIR = PROJECT_ROOT / ".venv-dbt"
DBT_EXECUTABLE_ENV = "PFO_DBT_EXECUTABLE"

TENANTS_FILE_ENV = "PFO_TENANTS_FILE"
SAMPLE_TENANTS_FILE = PACKAGE_DIR / "sample_tenants.yaml"
DOTENV_NAME = ".env"

# The emulator's own demo credentials (they open nothing but a local emulator), under names no
# real tenants file uses: only the sample tenants file names them.
DEMO_ENV = {
    "PFO_DEMO_POWENS_CLIENT_ID": "pfo-demo-client",
    "PFO_DEMO_POWENS_CLIENT_SECRET": "pfo-demo-secret",
    "PFO_DEMO_POWENS_WEBHOOK_SECRET": "pfo-demo-webhook-secret",
}
# Where the sample tenants find the emulator (`${PFO_POWENS_BASE_URL:-…}` in the file).
BASE_URL_ENV = "PFO_POWENS_BASE_URL"


def tenants_file() -> Path:
    """The tenants YAML: `PFO_TENANTS_FILE`, else the sample shipped with the package."""
    configured = os.environ.get(TENANTS_FILE_ENV)
    return Path(configured) if configured else SAMPLE_TENANTS_FILE


@dataclass(frozen=True)
class DotenvLoad:
    """What loading a `.env` did: the names it filled in, and the names it did not because the
    environment already sets them to another value (names only, never values)."""

    path: Path
    filled: tuple[str, ...]
    shadowed: tuple[str, ...]

    def undo(self) -> None:
        """Take the filled-in names out of the environment again (a command run in-process)."""
        for name in self.filled:
            os.environ.pop(name, None)
        if _LAST_LOAD[0] is self:
            _LAST_LOAD[0] = None


def load_dotenv_file(directory: Path | None = None) -> DotenvLoad:
    """Fill the environment from `<directory or cwd>/.env`, never overriding a variable already
    set (python-dotenv's `override=False` rule, applied here so the names can be reported)."""
    path = (directory or Path.cwd()) / DOTENV_NAME
    values = (
        {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}
    )
    filled, shadowed = [], []
    for name, value in values.items():
        if name not in os.environ:
            os.environ[name] = value
            filled.append(name)
        elif os.environ[name] != value:
            shadowed.append(name)
    _LAST_LOAD[0] = DotenvLoad(path, tuple(filled), tuple(shadowed))
    return _LAST_LOAD[0]


_LAST_LOAD: list[DotenvLoad | None] = [None]


def last_dotenv_load() -> DotenvLoad | None:
    """What the command's `load_dotenv_file` did (None when it was not called)."""
    return _LAST_LOAD[0]
