"""Ledger assets, partitioned by tenant: Powens connection health, accounts, transactions, balances.

Each sync asset calls `sync_step.run_sync_step` (the tenant's sync, then the step's own checks);
a skipped tenant's partition is not materialised, so the other tenants' runs are unaffected.
Every lake write is in the `lake` pool. The tenant partitions are applied when the code location
loads (`ledger_assets`), not at import.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandera.pandas as pa

from pfo_pipeline.defs.failures import fail_fast_if_permanent
from pfo_pipeline.defs.ledger.step_checks import step_check_specs
from pfo_pipeline.defs.ledger.sync_config import TransactionsSyncConfig
from pfo_pipeline.defs.ledger.sync_step import run_sync_step
from pfo_pipeline.defs.partitions import partitioned, tenant_partitions
from pfo_pipeline.defs.resources import LAKE, LakeResource, PowensResource
from pfo_pipeline.ledger.health import accounts_note, record_connection_health
from pfo_pipeline.ledger.records import (
    DAY,
    MONEY,
    OWN_TS,
    PROVIDER_TS,
    TEXT,
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
)
from pfo_pipeline.operations.powens_clients import powens_client_for
from pfo_pipeline.operations.tenant_sync import Stream
from pfo_pipeline.tenancy.guardrail import ensure_primary_open_banking

OWNERS = ["team:platform-finance"]
GROUP = "openbanking"

RETRY_SYNC_ACCOUNTS = dg.RetryPolicy(max_retries=3, delay=1.0, backoff=dg.Backoff.EXPONENTIAL)
RETRY_SYNC_TRANSACTIONS = dg.RetryPolicy(max_retries=4, delay=1.5, backoff=dg.Backoff.EXPONENTIAL)
RETRY_REFRESH_BALANCES = dg.RetryPolicy(max_retries=3, delay=1.0, backoff=dg.Backoff.EXPONENTIAL)


# The records' dtypes as the lake stores them (what an analyst sees in `DESCRIBE`).
STORED_TYPES = {
    str(MONEY): "DECIMAL(18,2)",
    str(DAY): "DATE",
    str(PROVIDER_TS): "TIMESTAMP (Powens, Europe/Paris)",
    str(OWN_TS): "TIMESTAMPTZ",
    str(TEXT): "VARCHAR",
    "string[pyarrow]": "VARCHAR",
}


def column_schema(model: type[pa.DataFrameModel]) -> dg.TableSchema:
    """The Pandera model as Dagster's column schema, so the catalog shows the contract."""
    columns = []
    for name, column in model.to_schema().columns.items():
        constraints = dg.TableColumnConstraints(
            nullable=bool(column.nullable),
            unique=bool(column.unique),
            other=[str(check) for check in column.checks],
        )
        stored = STORED_TYPES.get(str(column.dtype), str(column.dtype))
        columns.append(
            dg.TableColumn(name, stored, description=column.description, constraints=constraints)
        )
    return dg.TableSchema(columns=columns)


def ledger_sync_asset(
    *,
    deps: list[dg.AssetsDefinition],
    retry_policy: dg.RetryPolicy,
    record: type[pa.DataFrameModel],
    description: str,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """A ledger sync: an asset named after its table, with the record's schema in the catalog and
    the step's own checks (`step_checks`). The sync may skip a tenant (no materialisation), so the
    asset is skippable and subsettable: its checks then do not run, as before when they were steps
    of their own, and a check can be re-run alone from the UI without a sync."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        table = fn.__name__
        spec = dg.AssetSpec(
            table,
            deps=deps,
            group_name=GROUP,
            owners=OWNERS,
            kinds={"powens", "duckdb", "pandera"},
            metadata={"dagster/column_schema": column_schema(record)},
            description=description,
            skippable=True,
        )
        return dg.multi_asset(
            name=table,
            specs=[spec],
            check_specs=step_check_specs(table),
            can_subset=True,
            pool=LAKE,
            retry_policy=retry_policy,
        )(fn)

    return decorate


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"powens", "duckdb"},
    pool=LAKE,
    retry_policy=RETRY_SYNC_ACCOUNTS,
    description="Health of the tenant's Powens connection (docs/spec.md §7 guardrail), recorded in "
    "ledger.connection_health. Blocked or degraded is a valid observation, not a failure.",
)
def powens_connection_health(
    context: dg.AssetExecutionContext, powens: PowensResource, lake: LakeResource
) -> dg.MaterializeResult:
    tenant = powens.tenant(context.partition_key)
    now = datetime.now(UTC)
    with (
        fail_fast_if_permanent("check the Powens connection"),
        powens_client_for(tenant, powens.client_options()) as client,
    ):
        guard = ensure_primary_open_banking(tenant, client, now)
        accounts = accounts_note(client.list_accounts()) if guard.ok else None
    reason = f"{guard.reason} {accounts}" if accounts else guard.reason
    binding = tenant.primary_open_banking
    connection_id = binding.connection_id if binding else "unbound"
    with lake.get_connection() as conn:
        record_connection_health(
            conn, tenant.tenant_id, connection_id, now, guard.health.value, guard.state, reason
        )
    if not guard.ok:
        context.log.warning(f"Tenant {tenant.tenant_id}: {guard.reason}")
    return dg.MaterializeResult(
        metadata={
            "health": guard.health.value,
            "state": guard.state or "null (healthy)",
            "reason": reason,
            "retry_later": guard.retry_later,
            "no_accounts_yet": bool(accounts),
        }
    )


@ledger_sync_asset(
    deps=[powens_connection_health],
    retry_policy=RETRY_SYNC_ACCOUNTS,
    record=BankAccountRecord,
    description="ledger.bank_accounts: canonical accounts (`accounts.sync`), renumbering-proof.",
)
def bank_accounts(
    context: dg.AssetExecutionContext, powens: PowensResource, lake: LakeResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    yield from run_sync_step(context, Stream.ACCOUNTS, powens, lake)


@ledger_sync_asset(
    deps=[bank_accounts],
    retry_policy=RETRY_SYNC_TRANSACTIONS,
    record=BankTransactionRecord,
    description="ledger.bank_transactions (`transactions.sync`): incremental on Powens "
    "`last_update` minus an overlap, tombstones for deletions, pending->booked in place.",
)
def bank_transactions(
    context: dg.AssetExecutionContext,
    config: TransactionsSyncConfig,
    powens: PowensResource,
    lake: LakeResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    yield from run_sync_step(context, Stream.TRANSACTIONS, powens, lake, config.options())


@ledger_sync_asset(
    deps=[bank_accounts],
    retry_policy=RETRY_REFRESH_BALANCES,
    record=AccountBalanceRecord,
    description="ledger.account_balances (`balances.refresh`): one `current` snapshot per account "
    "per day; Powens keeps no history, so every day snapshotted is a day kept.",
)
def account_balances(
    context: dg.AssetExecutionContext, powens: PowensResource, lake: LakeResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    yield from run_sync_step(context, Stream.BALANCES, powens, lake)


@dg.definitions
def ledger_assets() -> dg.Definitions:
    """The ledger assets, one partition per tenant of the tenants file (read here, at load)."""
    return dg.Definitions(
        assets=partitioned(
            tenant_partitions(),
            [powens_connection_health, bank_accounts, bank_transactions, account_balances],
        )
    )
