"""The dbt marts as Dagster assets (dagster-dbt), downstream of the ledger assets.

They are built from dbt's manifest, so they are built when the code location loads
(`analytics_assets`, which parses the project first if needed), never on import.
"""

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pfo_pipeline.defs.analytics.check_descriptions import describe_dbt_test
from pfo_pipeline.defs.analytics.project import (
    dbt_environment,
    dbt_project,
    ensure_manifest,
    run_target_path,
)
from pfo_pipeline.defs.analytics.row_counts import with_row_counts
from pfo_pipeline.defs.resources import LAKE, LakeResource
from pfo_pipeline.lake import open_lake

OWNERS = ["team:platform-finance"]
LEDGER_SOURCE_ASSETS = {
    "bank_accounts": dg.AssetKey("bank_accounts"),
    "bank_transactions": dg.AssetKey("bank_transactions"),
    "account_balances": dg.AssetKey("account_balances"),
}


class PfoDbtTranslator(DagsterDbtTranslator):
    """Ledger sources map onto the ledger assets; marts live under the `analytics` prefix."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return LEDGER_SOURCE_ASSETS[dbt_resource_props["name"]]
        schema = dbt_resource_props.get("config", {}).get("schema") or "analytics"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        """The same owner as the ledger and the overview: one team answers for the whole flow."""
        return OWNERS

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        """dagster-dbt's check, with a description of what the dbt test checks."""
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        return spec._replace(description=describe_dbt_test(manifest["nodes"][unique_id]))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """`analytics`, or the group a model names in `meta.dagster.group` (the insight marts)."""
        meta = dbt_resource_props.get("config", {}).get("meta", {}) or {}
        return meta.get("dagster", {}).get("group") or "analytics"


@cache
def dbt_models() -> dg.AssetsDefinition:
    """Every dbt model, seed and test of the project, as one multi-asset (built once a process)."""
    project = dbt_project()

    @dbt_assets(
        manifest=ensure_manifest(project),
        project=project,
        dagster_dbt_translator=PfoDbtTranslator(),
        pool=LAKE,
    )
    def pfo_dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource
    ) -> Iterator[Any]:
        """`dbt build`: staging views, analytics marts and their tests (as asset checks), in the
        very lake the ledger resource points at; each mart's materialisation carries its row
        count (`row_counts`)."""
        with lake.get_connection():  # dbt's own attach would create a lake anywhere
            pass
        target = run_target_path(project, context.run.run_id)
        with dbt_environment(lake.location()):  # dbt starts here, with its environment
            build = dbt.cli(["build"], context=context, target_path=target)
        with open_lake(lake.location(), read_only=True) as conn:
            yield from with_row_counts(build.stream(), conn, build.manifest)

    return pfo_dbt_models


@dg.definitions
def analytics_assets() -> dg.Definitions:
    return dg.Definitions(assets=[dbt_models()])
