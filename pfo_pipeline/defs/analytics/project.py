"""The dbt project the marts are built from, and what dbt needs to run on the lake.

dbt's manifest must exist before the dbt assets are built; `DbtProject.prepare_if_dev()` only
builds it under `dagster dev`, so `ensure_manifest` builds it whenever it is missing or older than
the dbt sources. It runs when the code location loads (the first load after a change to the dbt
project), never on import: tests, `dagster asset materialize`, CI and the demo need no `dbt parse`.
"""

import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from pfo_pipeline import settings
from pfo_pipeline.ledger.lake import LakeLocation, extension_directory


@cache
def dbt_project() -> DbtProject:
    return DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this interpreter, so an un-activated venv still finds it."""
    local = Path(sys.executable).parent / "dbt"
    return str(local) if local.exists() else "dbt"


def _sources_mtime(project_dir: Path) -> float:
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds"):
        files += [p for p in (project_dir / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files if p.exists())


def ensure_manifest(project: DbtProject) -> Path:
    """Parse the dbt project when its manifest is missing or stale; returns the manifest path."""
    manifest = project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _sources_mtime(project.project_dir):
        DbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path
        ).wait()
    return manifest


def dbt_environment(location: LakeLocation) -> dict[str, str]:
    """What dbt's profile reads: the lake, and the folder the DuckDB extension wheels install."""
    return {**location.env(), "PFO_DUCKDB_EXTENSION_DIRECTORY": extension_directory()}
