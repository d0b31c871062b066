"""The four workflows of the original design, as asset jobs.

Each workflow's first step is a ledger asset (its retry policy lives on the asset) and its second
step the canonical read consumers use (`accounts_listing`, `transactions_listing`,
`balances_readable`), an asset check with its own retry policy, run with the asset's other checks.
"""

import dagster as dg

from pfo_pipeline.defs.ingestion import (
    account_balances,
    bank_accounts,
    bank_transactions,
    powens_connection_health,
)

sync_openbanking_accounts = dg.define_asset_job(
    name="sync_openbanking_accounts",
    description="Validate Powens connectivity, sync bank accounts into the ledger, then list them.",
    selection=dg.AssetSelection.assets(powens_connection_health, bank_accounts),
)

sync_openbanking_transactions = dg.define_asset_job(
    name="sync_openbanking_transactions",
    description="Incremental transaction sync for every linked account, then list transactions.",
    selection=dg.AssetSelection.assets(bank_transactions),
)

refresh_openbanking_balances = dg.define_asset_job(
    name="refresh_openbanking_balances",
    description="Snapshot today's balances, then read them back.",
    selection=dg.AssetSelection.assets(account_balances),
)

build_analytics_marts = dg.define_asset_job(
    name="build_analytics_marts",
    description="dbt build: staging views, analytics marts and their tests.",
    selection=dg.AssetSelection.groups("analytics", "insights"),  # all dbt models
)

SYNC_JOBS = [sync_openbanking_accounts, sync_openbanking_transactions, refresh_openbanking_balances]
