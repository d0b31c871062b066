"""The code location `workspace.yaml` loads: every asset, check, job, schedule and sensor."""

from __future__ import annotations

import dagster as dg

from pfo_pipeline.defs.checks import LEDGER_CHECKS
from pfo_pipeline.defs.ingestion import (
    account_balances,
    bank_accounts,
    bank_transactions,
    powens_connection_health,
)
from pfo_pipeline.defs.jobs import SYNC_JOBS
from pfo_pipeline.defs.resources import PowensResource, ledger_resource
from pfo_pipeline.defs.schedules import SYNC_SCHEDULES

LEDGER_ASSETS = [powens_connection_health, bank_accounts, bank_transactions, account_balances]


def build_resources() -> dict[str, object]:
    return {"powens": PowensResource(), "duckdb": ledger_resource()}


defs = dg.Definitions(
    assets=LEDGER_ASSETS,
    asset_checks=LEDGER_CHECKS,
    jobs=SYNC_JOBS,
    schedules=SYNC_SCHEDULES,
    resources=build_resources(),
)
