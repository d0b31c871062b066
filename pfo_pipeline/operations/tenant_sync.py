"""One sync of one tenant's stream, end to end, outside Dagster: the straight path every ledger
asset (and any script) calls.

capability switch -> one sync of the stream at a time (`sync_lock`) -> the tenant's Powens client
and a lake connection -> the `ensure_primary_open_banking` guardrail -> the stream's load
(`accounts_sync`, `transactions_sync`, `balances_refresh`) -> telemetry.

A switched-off or blocked (or degraded) tenant is skipped with a warning (and, when blocked, a
telemetry event): its partition is not materialised and other tenants are unaffected. Every
attempt reports telemetry, failed ones too; whether a failure may be retried is
`permanence.permanent_cause`'s call, made by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import duckdb

from pfo_pipeline.lake import LakeLocation, open_lake
from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.balances_refresh import refresh_balances
from pfo_pipeline.operations.permanence import permanent_cause
from pfo_pipeline.operations.powens_clients import powens_client_for
from pfo_pipeline.operations.sync_context import SyncLog, new_context
from pfo_pipeline.operations.sync_lock import tenant_sync_lock
from pfo_pipeline.operations.transactions_sync import TransactionsSyncOptions, sync_transactions
from pfo_pipeline.powens.client import PowensClient
from pfo_pipeline.powens.options import ClientOptions
from pfo_pipeline.telemetry import events
from pfo_pipeline.tenancy.blueprint import CAP_ACCOUNTS, CAP_BALANCES, CAP_TRANSACTIONS
from pfo_pipeline.tenancy.config import TenantConfig
from pfo_pipeline.tenancy.guardrail import GuardResult, ensure_primary_open_banking


class Stream(StrEnum):
    """A ledger sync, named by the table (and asset) it writes."""

    ACCOUNTS = "bank_accounts"
    TRANSACTIONS = "bank_transactions"
    BALANCES = "account_balances"


@dataclass(frozen=True)
class StreamSpec:
    """What sets one stream's sync apart: its capability switch and telemetry events."""

    capability: str
    success_event: str
    failure_event: str


SPECS = {
    Stream.ACCOUNTS: StreamSpec(CAP_ACCOUNTS, events.ACCOUNTS_SYNCED, events.ACCOUNTS_SYNC_FAILED),
    Stream.TRANSACTIONS: StreamSpec(
        CAP_TRANSACTIONS, events.TRANSACTIONS_SYNCED, events.TRANSACTIONS_SYNC_FAILED
    ),
    Stream.BALANCES: StreamSpec(
        CAP_BALANCES, events.BALANCES_REFRESHED, events.BALANCES_REFRESH_FAILED
    ),
}


@dataclass(frozen=True)
class SyncAttempt:
    """Which attempt this is (1-based) and how many retries the caller allows after the first."""

    number: int = 1
    max_retries: int = 0

    @property
    def is_last(self) -> bool:
        return self.number > self.max_retries


@dataclass(frozen=True)
class SyncReport:
    """A load that ran: its id and what the materialisation shows."""

    load_id: str
    metadata: dict[str, Any]


def sync_tenant(
    stream: Stream,
    tenant: TenantConfig,
    lake: LakeLocation,
    *,
    client_options: ClientOptions | None = None,
    transactions: TransactionsSyncOptions | None = None,
    attempt: SyncAttempt | None = None,
    log: SyncLog,
    holder: str = "",
) -> SyncReport | None:
    """The stream's sync of `tenant` into the lake at `lake`; None when the tenant was skipped.
    `transactions` configures a transactions sync (default: incremental); `holder` names who
    syncs (a Dagster run) to a second sync refused meanwhile."""
    spec = SPECS[stream]
    if not tenant.capability_enabled(spec.capability):
        log.warning(
            f"Tenant {tenant.tenant_id}: capability {spec.capability} is switched off; sync skipped."
        )
        return None
    with (
        tenant_sync_lock(lake, tenant.tenant_id, stream.value, holder),
        powens_client_for(tenant, client_options) as client,
        open_lake(lake) as conn,
    ):
        started = datetime.now(UTC)
        try:
            guard = ensure_primary_open_banking(tenant, client, started)
            if not guard.ok:
                _report_skip(conn, tenant, guard, stream, log)
                return None
            result = _load(stream, tenant, client, conn, transactions, log)
        except Exception as exc:
            _report_failure(conn, tenant, spec, exc, attempt or SyncAttempt(), started)
            raise
        _emit(
            conn,
            tenant,
            spec.success_event,
            {**result.telemetry(), "duration_ms": _ms_since(started), "retries": client.retries},
        )
        metadata = {
            **result.metadata(),
            **row_counts(conn, stream.value, tenant.tenant_id),
            "powens_retries": client.retries,
            "powens_token_renewals": client.renewals,
            "duration_ms": _ms_since(started),
        }
    return SyncReport(result.load_id, metadata)


def _load(
    stream: Stream,
    tenant: TenantConfig,
    client: PowensClient,
    conn: duckdb.DuckDBPyConnection,
    transactions: TransactionsSyncOptions | None,
    log: SyncLog,
) -> Any:
    """The stream's one load (its result has `load_id`, `metadata()` and `telemetry()`)."""
    binding = tenant.primary_open_banking
    assert binding is not None  # the guardrail blocks an unbound tenant
    ctx = new_context(tenant.tenant_id, binding.connection_id, binding.powens_user_id)
    match stream:
        case Stream.ACCOUNTS:
            interval = timedelta(milliseconds=binding.config.polling_interval_ms)
            return sync_accounts(conn, client, ctx, polling_interval=interval)
        case Stream.TRANSACTIONS:
            return sync_transactions(conn, client, ctx, transactions, log=log)
        case Stream.BALANCES:
            return refresh_balances(conn, client, ctx)


def row_counts(conn: duckdb.DuckDBPyConnection, table: str, tenant_id: str) -> dict[str, int]:
    """Rows of the partition just materialised, and of the whole table (every tenant)."""
    if table not in {s.value for s in Stream}:
        raise ValueError(f"not a ledger sync table: {table!r}")
    partition, total = conn.execute(
        f"SELECT count(*) FILTER (WHERE tenant_id = ?), count(*) FROM ledger.{table}", [tenant_id]
    ).fetchall()[0]
    return {"dagster/row_count": partition, "partition_rows": partition, "table_rows": total}


def _report_failure(
    conn: duckdb.DuckDBPyConnection,
    tenant: TenantConfig,
    spec: StreamSpec,
    exc: BaseException,
    attempt: SyncAttempt,
    started: datetime,
) -> None:
    """Every failed attempt is reported, the last one (retries exhausted) included."""
    _emit(
        conn,
        tenant,
        spec.failure_event,
        {
            "error_kind": getattr(exc, "kind", type(exc).__name__),
            "error": str(exc),
            "duration_ms": _ms_since(started),
            "attempt": attempt.number,
            "retries_exhausted": permanent_cause(exc) is not None or attempt.is_last,
        },
    )


def _report_skip(
    conn: duckdb.DuckDBPyConnection,
    tenant: TenantConfig,
    guard: GuardResult,
    stream: Stream,
    log: SyncLog,
) -> None:
    verdict = "retry later" if guard.retry_later else "needs the user"
    log.warning(
        f"Tenant {tenant.tenant_id} skipped ({guard.health.value}, {verdict}): {guard.reason}"
    )
    _emit(
        conn,
        tenant,
        events.GUARDRAIL_BLOCKED,
        {
            "health": guard.health.value,
            "state": guard.state,
            "reason": guard.reason,
            "retry_later": guard.retry_later,
            "asset": stream.value,
        },
    )


def _emit(
    conn: duckdb.DuckDBPyConnection, tenant: TenantConfig, name: str, props: dict[str, Any]
) -> None:
    events.emit(
        events.build_event(name, events.TelemetryContext.for_tenant(tenant), props), conn=conn
    )


def _ms_since(started: datetime) -> int:
    return int((datetime.now(UTC) - started).total_seconds() * 1000)
