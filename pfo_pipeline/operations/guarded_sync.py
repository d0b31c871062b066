"""The shared shape of the three syncs (accounts, transactions, balances), outside Dagster.

A sync runs only when the tenant's capability is on and the `ensure_primary_open_banking`
guardrail lets it through; a blocked (or degraded) tenant is skipped with a warning and a telemetry
event, which leaves other tenants unaffected. Every attempt reports telemetry, failed ones too.
A permanent error (wrong or missing credentials, a request Powens refuses, an unreachable Powens,
a bad config, a lake that cannot be opened) fails at once with its real message; anything else is
left to the caller's retries. The Dagster assets and any command-line caller share this one implementation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import dagster as dg
import duckdb

from pfo_pipeline.ledger.lake import LakeCommitConflict, LakeError
from pfo_pipeline.ledger.lake_faults import LakeFault, lake_fault
from pfo_pipeline.operations import sync
from pfo_pipeline.operations.sync_lock import SyncAlreadyRunning
from pfo_pipeline.powens.client import PowensClient
from pfo_pipeline.powens.errors import (
    PowensAuthError,
    PowensNotFoundError,
    PowensRequestError,
    PowensUnreachableError,
)
from pfo_pipeline.telemetry import events
from pfo_pipeline.tenancy.config import TenantConfig, TenantConfigError
from pfo_pipeline.tenancy.guardrail import GuardResult, ensure_primary_open_banking

if TYPE_CHECKING:
    from pfo_pipeline.ledger.types import SyncContext

# A retry cannot fix these; a commit conflict (a LakeError) is the exception: it is transient.
# An unreachable Powens (its transport already tried again within seconds) is a wrong address or
# an outage: a step retry minutes later only hides the address that failed.
# Lake faults (a missing or truncated data file, a full disk, a permission error...) are
# recognised by `lake_fault` whatever DuckDB or the OS raised them as.
PERMANENT_ERRORS = (
    PowensAuthError,
    PowensRequestError,
    PowensNotFoundError,
    PowensUnreachableError,
    TenantConfigError,
    LakeError,
)

RunLoad = Callable[
    [duckdb.DuckDBPyConnection, PowensClient, "SyncContext"],
    tuple[dict[str, Any], dict[str, Any]],
]
"""One load: returns (metadata for the caller, properties for the success telemetry event)."""
T = TypeVar("T")


class NotRetryable(dg.Failure):
    """A failure no retry can fix: Dagster fails the step on this attempt (no retries), and any
    other caller sees an exception whose message is the real cause."""

    def __init__(self, what: str, exc: BaseException) -> None:
        cause = str(exc) if isinstance(exc, LakeFault) else f"{type(exc).__name__}: {exc}"
        super().__init__(
            description=f"{what}: {cause}"
            + ("" if isinstance(exc, LakeFault) else " (not retried: a retry cannot fix this)"),
            allow_retries=False,
        )


def permanent_cause(exc: BaseException) -> BaseException | None:
    """What to report when a retry cannot fix `exc` (a lake fault says which file and what to
    do); None when a retry may help."""
    if isinstance(exc, LakeCommitConflict):
        return None
    fault = lake_fault(exc)
    if fault is not None:
        return fault
    return exc if isinstance(exc, PERMANENT_ERRORS) else None


def is_permanent(exc: BaseException) -> bool:
    return permanent_cause(exc) is not None


def fail_fast_if_permanent(build: Callable[[], T], what: str) -> T:
    """`build()`, with a permanent error turned into `NotRetryable`."""
    try:
        return build()
    except Exception as exc:
        cause = permanent_cause(exc)
        if cause is not None:
            raise NotRetryable(what, cause) from exc
        raise


class SyncLog(Protocol):
    """Where skips are reported: a `logging.Logger` or Dagster's `context.log`."""

    def warning(self, msg: str) -> Any: ...


@dataclass(frozen=True)
class SyncAttempt:
    """Which attempt this is (1-based) and how many retries the caller allows after the first."""

    number: int = 1
    max_retries: int = 0

    @property
    def is_last(self) -> bool:
        return self.number > self.max_retries


@dataclass(frozen=True)
class SyncSpec:
    """What distinguishes one sync from another: its capability switch and telemetry events."""

    capability: str
    success_event: str
    failure_event: str
    source: str  # who asked (an asset name): recorded when the guardrail blocks the tenant


def guarded_sync(
    tenant: TenantConfig,
    spec: SyncSpec,
    run: RunLoad,
    *,
    build_client: Callable[[], PowensClient],
    open_ledger: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    attempt: SyncAttempt | None = None,
    log: SyncLog | None = None,
    sync_lock: Callable[[], AbstractContextManager[None]] | None = None,
) -> dict[str, Any] | None:
    """Capability, guardrail, one load, telemetry. Returns the load's metadata (with the client's
    retries, token renewals and the duration), or None when the tenant was skipped. With
    `sync_lock` (`sync_lock.tenant_sync_lock`), a second sync of the same tenant and stream
    is refused before any Powens request."""
    attempt = attempt or SyncAttempt()
    log = log or logging.getLogger(__name__)
    if not tenant.capability_enabled(spec.capability):
        log.warning(
            f"Tenant {tenant.tenant_id}: capability {spec.capability} is switched off; sync skipped."
        )
        return None
    try:
        with sync_lock() if sync_lock else contextlib.nullcontext():
            return _locked_sync(tenant, spec, run, build_client, open_ledger, attempt, log)
    except SyncAlreadyRunning as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def _locked_sync(
    tenant: TenantConfig,
    spec: SyncSpec,
    run: RunLoad,
    build_client: Callable[[], PowensClient],
    open_ledger: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    attempt: SyncAttempt,
    log: SyncLog,
) -> dict[str, Any] | None:
    started = datetime.now(UTC)
    binding = tenant.primary_open_banking
    client = fail_fast_if_permanent(build_client, "build the Powens client")
    with client, open_ledger() as conn:
        try:
            guard = ensure_primary_open_banking(
                tenant, client.list_connections, started, lambda: client.last_server_time
            )
            if not guard.ok:
                _skip_blocked(log, conn, tenant, guard, spec.source)
                return None
            ctx = sync.new_context(tenant.tenant_id, binding.connection_id, binding.powens_user_id)
            metadata, props = run(conn, client, ctx)
        except Exception as exc:
            # Every failed attempt is reported, the last one (retries exhausted) included.
            cause = permanent_cause(exc)
            permanent = cause is not None
            _telemetry(
                conn,
                tenant,
                spec.failure_event,
                {
                    "error_kind": getattr(exc, "kind", type(exc).__name__),
                    "error": str(exc),
                    "duration_ms": _ms_since(started),
                    "attempt": attempt.number,
                    "retries_exhausted": permanent or attempt.is_last,
                },
            )
            if cause is not None:
                raise NotRetryable(spec.source, cause) from exc
            raise
        props["duration_ms"] = _ms_since(started)
        props["retries"] = client.retries
        _telemetry(conn, tenant, spec.success_event, props)
    metadata["powens_retries"] = client.retries
    metadata["powens_token_renewals"] = client.renewals
    metadata["duration_ms"] = _ms_since(started)
    return metadata


def _telemetry(
    conn: duckdb.DuckDBPyConnection | None, tenant: TenantConfig, name: str, props: dict[str, Any]
) -> None:
    events.emit(
        events.build_event(name, events.TelemetryContext.for_tenant(tenant), props), conn=conn
    )


def _ms_since(started: datetime) -> int:
    return int((datetime.now(UTC) - started).total_seconds() * 1000)


def _skip_blocked(
    log: SyncLog,
    conn: duckdb.DuckDBPyConnection,
    tenant: TenantConfig,
    guard: GuardResult,
    source: str,
) -> None:
    verdict = "retry later" if guard.retry_later else "needs the user"
    log.warning(
        f"Tenant {tenant.tenant_id} skipped ({guard.health.value}, {verdict}): {guard.reason}"
    )
    _telemetry(
        conn,
        tenant,
        events.GUARDRAIL_BLOCKED,
        {
            "health": guard.health.value,
            "state": guard.state,
            "reason": guard.reason,
            "retry_later": guard.retry_later,
            "asset": source,
        },
    )
