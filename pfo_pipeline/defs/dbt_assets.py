"""The dbt marts as Dagster assets (dagster-dbt), downstream of the ledger assets.

dbt's manifest must exist before definitions load; `DbtProject.prepare_if_dev()` only builds it
under `dagster dev`, so the package builds it itself whenever it is missing or older than the dbt
sources: tests, `dagster asset materialize`, CI and the demo never need a manual `dbt parse`.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pfo_pipeline import settings
from pfo_pipeline.defs.resources import LEDGER_POOL, LakeResource
from pfo_pipeline.ledger.lake import LakeLocation, extension_directory

LEDGER_SOURCE_ASSETS = {
    "bank_accounts": dg.AssetKey("bank_accounts"),
    "bank_transactions": dg.AssetKey("bank_transactions"),
    "account_balances": dg.AssetKey("account_balances"),
}

dbt_project = DbtProject(
    project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR
)


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


class PfoDbtTranslator(DagsterDbtTranslator):
    """Ledger sources map onto the ledger assets; marts live under the `analytics` prefix."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return LEDGER_SOURCE_ASSETS[dbt_resource_props["name"]]
        schema = dbt_resource_props.get("config", {}).get("schema") or "analytics"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """`analytics`, or the group a model names in `meta.dagster.group` (the insight marts)."""
        meta = dbt_resource_props.get("config", {}).get("meta", {}) or {}
        return meta.get("dagster", {}).get("group") or "analytics"


@dbt_assets(
    manifest=ensure_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=PfoDbtTranslator(),
    pool=LEDGER_POOL,
)
def pfo_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: LakeResource):
    """`dbt build`: staging views, analytics marts and their tests (as asset checks), in the very
    lake the ledger resource points at."""
    os.environ.update(dbt_environment(duckdb.location()))
    yield from dbt.cli(["build"], context=context).stream()


def dbt_environment(location: LakeLocation) -> dict[str, str]:
    """What dbt's profile reads: the lake, and the folder the DuckDB extension wheels install."""
    return {**location.env(), "PFO_DUCKDB_EXTENSION_DIRECTORY": extension_directory()}


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(settings.DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )
