"""Process-level settings read from the environment, in one place so every entry point agrees."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

TENANTS_FILE_ENV = "PFO_TENANTS_FILE"
SAMPLE_TENANTS_FILE = PACKAGE_DIR / "sample_tenants.yaml"


def tenants_file() -> Path:
    """The tenants YAML: `PFO_TENANTS_FILE`, else the sample shipped with the package."""
    configured = os.environ.get(TENANTS_FILE_ENV)
    return Path(configured) if configured else SAMPLE_TENANTS_FILE
