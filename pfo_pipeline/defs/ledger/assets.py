"""Ledger assets, partitioned by tenant: Powens connection health, accounts, transactions, balances.

Each sync goes through `operations.guarded_sync` (capability, guardrail, telemetry, permanent
errors); a skipped tenant's partition is not materialised, so the other tenants' runs are
unaffected. Every ledger write is in the `duckdb_ledger` pool. The tenant partitions are
applied when the code location loads (`ledger_assets`), not at import.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
import pandera.pandas as pa

from pfo_pipeline.defs.ledger.step_checks import step_check_results, step_check_specs
from pfo_pipeline.defs.ledger.sync_config import TransactionsSyncConfig, backfill_window
from pfo_pipeline.defs.partitions import partitioned, tenant_partitions
from pfo_pipeline.defs.resources import LEDGER_POOL, LakeResource, PowensResource, ledger_connection
from pfo_pipeline.ledger.health import accounts_note, record_connection_health
from pfo_pipeline.ledger.lake import one_snapshot
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
from pfo_pipeline.operations import sync
from pfo_pipeline.operations.guarded_sync import (
    RunLoad,
    SyncAttempt,
    SyncSpec,
    fail_fast_if_permanent,
    guarded_sync,
)
from pfo_pipeline.operations.sync_lock import tenant_sync_lock
from pfo_pipeline.telemetry import events
from pfo_pipeline.tenancy.blueprint import CAP_ACCOUNTS, CAP_BALANCES, CAP_TRANSACTIONS
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
            pool=LEDGER_POOL,
            retry_policy=retry_policy,
        )(fn)

    return decorate


def _guarded_sync(
    context: dg.AssetExecutionContext,
    powens: PowensResource,
    duckdb_resource: LakeResource,
    *,
    capability: str,
    success_event: str,
    failure_event: str,
    run: RunLoad,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The asset's side of `guarded_sync`: its tenant, resources, retry count and log; the step's
    own checks run on the sync's connection right after its load."""
    table = context.op_def.name
    selected_checks = context.selected_asset_check_keys
    check_results: list[dg.AssetCheckResult] = []

    def run_checks(conn: duckdb.DuckDBPyConnection, load_id: str | None = None) -> None:
        with one_snapshot(conn):
            check_results.extend(
                result
                for result in step_check_results(conn, table, load_id)
                if dg.AssetCheckKey(dg.AssetKey(table), result.check_name) in selected_checks
            )

    if not context.selected_asset_keys:  # only checks selected: re-run them, sync nothing
        with ledger_connection(duckdb_resource) as conn:
            run_checks(conn)
        yield from check_results
        return

    def load_then_check(conn, client, ctx):
        loaded = run(conn, client, ctx)
        run_checks(conn, ctx.load_id)
        return loaded

    tenant = powens.tenant(context.partition_key)

    metadata = guarded_sync(
        tenant,
        SyncSpec(capability, success_event, failure_event, table),
        load_then_check,
        build_client=lambda: powens.client_for(tenant),
        open_ledger=lambda: ledger_connection(duckdb_resource),
        attempt=SyncAttempt(context.retry_number + 1, _max_retries(context)),
        log=context.log,
        sync_lock=lambda: tenant_sync_lock(
            duckdb_resource.location(), tenant.tenant_id, table, holder=f"run {context.run_id}"
        ),
    )
    if metadata is not None:
        yield dg.MaterializeResult(metadata=metadata, check_results=check_results)


def _max_retries(context: dg.AssetExecutionContext) -> int:
    policy = context.op_def.retry_policy
    return policy.max_retries if policy else 0


def _load_metadata(result: Any) -> dict[str, Any]:
    stats = result.stats
    return {
        "load_id": result.load_id,
        "rows_in": stats.rows_in,
        "upserted": stats.upserted,
        "inserted": stats.inserted,
        "unchanged": stats.unchanged,
        "quarantined": stats.quarantined,
        "quarantine_resolved": stats.quarantine_resolved,
        "held_back": stats.held_back,
        "tombstoned": stats.tombstoned,
    }


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"powens", "duckdb"},
    pool=LEDGER_POOL,
    retry_policy=RETRY_SYNC_ACCOUNTS,
    description="Health of the tenant's Powens connection (docs/spec.md §7 guardrail), recorded in "
    "ledger.connection_health. Blocked or degraded is a valid observation, not a failure.",
)
def powens_connection_health(
    context: dg.AssetExecutionContext, powens: PowensResource, duckdb: LakeResource
) -> dg.MaterializeResult:
    tenant = powens.tenant(context.partition_key)
    now = datetime.now(UTC)
    client = fail_fast_if_permanent(lambda: powens.client_for(tenant), "build the Powens client")
    with client:
        guard = fail_fast_if_permanent(
            lambda: ensure_primary_open_banking(
                tenant, client.list_connections, now, lambda: client.last_server_time
            ),
            "check the Powens connection",
        )
        accounts = guard.ok and fail_fast_if_permanent(
            lambda: accounts_note(client.list_accounts), "list the Powens accounts"
        )
    reason = f"{guard.reason} {accounts}" if accounts else guard.reason
    binding = tenant.primary_open_banking
    connection_id = binding.connection_id if binding else "unbound"
    with ledger_connection(duckdb) as conn:
        record_connection_health(
            conn,
            tenant.tenant_id,
            connection_id,
            now,
            guard.health.value,
            guard.state,
            reason,
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
    context: dg.AssetExecutionContext, powens: PowensResource, duckdb: LakeResource
) -> Iterator[dg.MaterializeResult]:
    def run(conn, client, ctx):
        binding = powens.tenant(ctx.tenant_id).primary_open_banking
        interval = timedelta(milliseconds=binding.config.polling_interval_ms)
        result = sync.sync_accounts(conn, client, ctx, polling_interval=interval)
        metadata = _load_metadata(result)
        metadata.update(_row_counts(conn, "bank_accounts", ctx.tenant_id))
        metadata["next_sync_suggested_at"] = result.next_sync_suggested_at.isoformat()
        props = {"synced_count": result.synced, "failed_count": result.failed}
        return metadata, props

    yield from _guarded_sync(
        context,
        powens,
        duckdb,
        capability=CAP_ACCOUNTS,
        success_event=events.ACCOUNTS_SYNCED,
        failure_event=events.ACCOUNTS_SYNC_FAILED,
        run=run,
    )


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
    duckdb: LakeResource,
) -> Iterator[dg.MaterializeResult]:
    min_date, max_date = backfill_window(config)

    def run(conn, client, ctx):
        result = sync.sync_transactions(
            conn,
            client,
            ctx,
            full_refresh=config.full_refresh,
            backfill_days=config.backfill_days,
            min_date=min_date,
            max_date=max_date,
            include_pending=config.include_pending,
            overlap=timedelta(minutes=config.overlap_minutes),
            batch_rows=config.batch_rows,
            page_size=config.page_size,
            concurrency=config.fetch_concurrency,
            progress=context.log.info,
        )
        metadata = _load_metadata(result)
        metadata.update(
            {
                **_row_counts(conn, "bank_transactions", ctx.tenant_id),
                "mode": result.mode,
                "twins_linked": result.stats.twins_linked,
                "duplicates_merged": result.stats.duplicates,
                "upstream_moved": result.stats.upstream_moved,
                "cursor_held": result.stats.cursor_held,
                "listing_moved_because": "; ".join(result.stats.shift_reasons) or "-",
                "accounts_synced_first": result.accounts_synced_first,
                "window_start": result.window_start or "-",
                "window_end": result.window_end or "-",
                "cursor_before": str(result.cursor_before) if result.cursor_before else "-",
                "cursor_after": str(result.cursor_after) if result.cursor_after else "-",
            }
        )
        props = {
            "synced_count": result.synced,
            "failed_count": result.failed,
            "from": result.window_start,
            "to": result.window_end,
            "mode": result.mode,
            "cursor": result.next_since_token,
        }
        return metadata, props

    yield from _guarded_sync(
        context,
        powens,
        duckdb,
        capability=CAP_TRANSACTIONS,
        success_event=events.TRANSACTIONS_SYNCED,
        failure_event=events.TRANSACTIONS_SYNC_FAILED,
        run=run,
    )


@ledger_sync_asset(
    deps=[bank_accounts],
    retry_policy=RETRY_REFRESH_BALANCES,
    record=AccountBalanceRecord,
    description="ledger.account_balances (`balances.refresh`): one `current` snapshot per account "
    "per day; Powens keeps no history, so every day snapshotted is a day kept.",
)
def account_balances(
    context: dg.AssetExecutionContext, powens: PowensResource, duckdb: LakeResource
) -> Iterator[dg.MaterializeResult]:
    def run(conn, client, ctx):
        result = sync.refresh_balances(conn, client, ctx)
        metadata = _load_metadata(result)
        metadata.update(_row_counts(conn, "account_balances", ctx.tenant_id))
        metadata["as_of_date"] = result.as_of_date.isoformat()
        props = {
            "refreshed_count": result.refreshed,
            "failed_count": result.failed,
            "balance_types": ["current"],
            "refreshed_at": result.refreshed_at.isoformat(),
            "as_of_date": result.as_of_date.isoformat(),
        }
        return metadata, props

    yield from _guarded_sync(
        context,
        powens,
        duckdb,
        capability=CAP_BALANCES,
        success_event=events.BALANCES_REFRESHED,
        failure_event=events.BALANCES_REFRESH_FAILED,
        run=run,
    )


def _row_counts(conn: duckdb.DuckDBPyConnection, table: str, tenant_id: str) -> dict[str, int]:
    """Rows of the partition just materialised, and of the whole table (every tenant)."""
    partition, total = conn.execute(
        f"SELECT count(*) FILTER (WHERE tenant_id = ?), count(*) FROM ledger.{table}", [tenant_id]
    ).fetchall()[0]
    return {"dagster/row_count": partition, "partition_rows": partition, "table_rows": total}


@dg.definitions
def ledger_assets() -> dg.Definitions:
    """The ledger assets, one partition per tenant of the tenants file (read here, at load)."""
    return dg.Definitions(
        assets=partitioned(
            tenant_partitions(),
            [powens_connection_health, bank_accounts, bank_transactions, account_balances],
        )
    )
