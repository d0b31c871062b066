"""The Dagster surface: the graph loads, the workflows carry their retry policies, every ledger
writer is in the one-writer pool, and schedules follow polling_interval_ms."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from pfo_pipeline.definitions import load_definitions
from pfo_pipeline.defs.ledger.automation import cron_for, due_tenants, tick_minutes
from pfo_pipeline.defs.resources import LAKE
from pfo_pipeline.tenancy.config import load_tenants

ROOT = Path(__file__).resolve().parents[2]
defs = load_definitions()


def test_workspace_loads_without_errors() -> None:
    """What `dagster dev` does with workspace.yaml, from the command line."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_graph_has_every_asset_downstream_of_the_ledger() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "powens_connection_health", "bank_accounts", "bank_transactions", "account_balances",
        "analytics/dim_accounts", "analytics/fct_daily_cashflow", "analytics/fct_category_breakdown",
        "analytics/fct_daily_balances", "financial_overview", "knowledge_retention_sweep",
    } <= keys  # fmt: skip
    upstream = graph.get(dg.AssetKey(["staging", "stg_bank_transactions"])).parent_keys
    assert dg.AssetKey("bank_transactions") in upstream
    overview_parents = graph.get(dg.AssetKey("financial_overview")).parent_keys
    assert dg.AssetKey(["analytics", "fct_daily_cashflow"]) in overview_parents


@pytest.mark.parametrize(
    "job, asset, retries, delay, backoff",
    [
        ("sync_openbanking_accounts", "bank_accounts", 3, 1.0, dg.Backoff.EXPONENTIAL),
        ("sync_openbanking_transactions", "bank_transactions", 4, 1.5, dg.Backoff.EXPONENTIAL),
        ("refresh_openbanking_balances", "account_balances", 3, 1.0, dg.Backoff.EXPONENTIAL),
        ("generate_openbanking_overview", "financial_overview", 3, 1.5, dg.Backoff.EXPONENTIAL),
    ],
)
def test_workflow_first_steps_have_their_retry_policies(
    job, asset, retries, delay, backoff
) -> None:
    job_def = defs.resolve_job_def(job)
    assert asset in {n.name for n in job_def.graph.node_defs}
    policy = defs.resolve_asset_graph().assets_def_for_key(dg.AssetKey(asset)).op.retry_policy
    assert (policy.max_retries, policy.delay, policy.backoff) == (retries, delay, backoff)


@pytest.mark.parametrize(
    "check, retries, delay",
    [
        ("accounts_listing", 2, 0.75),
        ("transactions_listing", 2, 1.0),
        ("balances_readable", 2, 0.75),
    ],
)
def test_workflow_second_steps_have_linear_retries(check: str, retries: int, delay: float) -> None:
    checks = {c.check_key.name: c for c in defs.asset_checks or [] if hasattr(c, "check_key")}
    node = checks[check].node_def
    assert (node.retry_policy.max_retries, node.retry_policy.delay) == (retries, delay)
    assert node.retry_policy.backoff == dg.Backoff.LINEAR


def test_every_ledger_writer_is_in_the_single_writer_pool() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.assets_def_for_key(key).node_def
        assert node.pool == LAKE, key


def test_schedules_follow_polling_interval() -> None:
    tenants = load_tenants()
    assert tick_minutes(tenants) == 5 and cron_for(5) == "*/5 * * * *"
    assert due_tenants(tenants, 10) == list(tenants) and due_tenants(tenants, 11) == []
    names = {s.name for s in defs.schedules or []}
    assert {
        "sync_openbanking_transactions_schedule", "daily_overview_schedule",
    } <= names  # fmt: skip
    schedule = defs.resolve_schedule_def("sync_openbanking_transactions_schedule")
    tick = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    context = dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert {r.partition_key for r in requests} == set(tenants)
    assert len({r.run_key for r in requests}) == len(tenants)


def test_loading_the_code_location_warns_nothing_of_ours() -> None:
    """Each run step re-imports the code location: a warning there repeats in every run log (and
    matplotlib, which only the overview's chart needs, would add ~0.7 s to every run's start)."""
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('always')\n"
        "import pfo_pipeline.definitions as d\n"
        "d.load_definitions().get_repository_def()\n"
        "assert 'matplotlib' not in sys.modules, 'the code location imports matplotlib'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [
        line
        for line in result.stderr.splitlines()
        if "Warning" in line and "sqlglotrs" not in line  # a dependency's own import notice
    ]
    assert warnings == []


@pytest.mark.parametrize("table", ["bank_accounts", "bank_transactions", "account_balances"])
def test_checks_on_a_syncs_own_rows_are_reported_by_its_step(table: str) -> None:
    """Contract and unique ids run in the sync's step (check_specs), the contract blocking."""
    specs = {spec.name: spec.blocking for spec in defs.resolve_assets_def(table).check_specs}
    assert specs == {f"{table}_schema": True, f"{table}_unique_ids": False}


def test_the_demo_selects_what_the_definitions_group_and_label() -> None:
    from pfo_pipeline import demo

    graph = defs.resolve_asset_graph()
    ledger = {key.to_user_string() for key in demo.LEDGER.resolve(graph)}
    assert ledger == {
        "powens_connection_health",
        "bank_accounts",
        "bank_transactions",
        "account_balances",
    }
    assert {key.to_user_string() for key in demo.OVERVIEW.resolve(graph)} == {"financial_overview"}
    marts = demo.MARTS.resolve(graph)
    assert dg.AssetKey(["analytics", "fct_daily_cashflow"]) in marts
    assert {key.path[0] for key in marts} == {"analytics", "staging"}


def test_every_asset_has_an_owner() -> None:
    """dbt marts included: the UI's owner filter must find the whole flow."""
    graph = load_definitions().resolve_asset_graph()
    ownerless = [
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_materializable and not graph.get(key).owners
    ]
    assert ownerless == []


def test_every_asset_check_says_what_it_checks() -> None:
    """The UI shows a check's description on its page: dbt's tests too (not "No description
    provided"), from their arguments or their SQL's opening comment."""
    specs = [
        spec for assets in defs.resolve_asset_graph().assets_defs for spec in assets.check_specs
    ]
    assert len(specs) >= 40
    assert [spec.name for spec in specs if not (spec.description or "").strip()] == []
    by_name = {spec.name: spec.description for spec in specs}
    assert by_name["unique_dim_accounts_account_id"] == "dbt test: `account_id` is unique."
    assert by_name["assert_no_pii_in_analytics"].startswith("No text published in analytics")
