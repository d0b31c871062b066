"""Telemetry events (docs/spec.md §9): common tenant metadata plus redacted properties, written as one
structured log line and one row of `telemetry.events` (stored by `telemetry.store`, through the lake).

Emitting never raises: telemetry must not fail the run that emits it, so a failure becomes a warning
that names the event and the error type, never the payload.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from pfo_pipeline.telemetry.redaction import mask_ibans, redact_openbanking_payload
from pfo_pipeline.telemetry.store import store_event
from pfo_pipeline.tenancy.blueprint import SLOT_ID
from pfo_pipeline.tenancy.config import TenantConfig

ACCOUNTS_SYNCED = "openbanking.accounts.synced"
ACCOUNTS_SYNC_FAILED = "openbanking.accounts.sync_failed"
TRANSACTIONS_SYNCED = "openbanking.transactions.synced"
TRANSACTIONS_SYNC_FAILED = "openbanking.transactions.sync_failed"
BALANCES_REFRESHED = "openbanking.balances.refreshed"
BALANCES_REFRESH_FAILED = "openbanking.balances.refresh_failed"
OVERVIEW_GENERATED = "openbanking.overview.generated"
GUARDRAIL_BLOCKED = "openbanking.guardrail.blocked"
WEBHOOK_UNMAPPED = "openbanking.webhook.unmapped"
EVENT_NAMES = frozenset(
    {
        ACCOUNTS_SYNCED,
        ACCOUNTS_SYNC_FAILED,
        TRANSACTIONS_SYNCED,
        TRANSACTIONS_SYNC_FAILED,
        BALANCES_REFRESHED,
        BALANCES_REFRESH_FAILED,
        OVERVIEW_GENERATED,
        GUARDRAIL_BLOCKED,
        WEBHOOK_UNMAPPED,
    }
)

LOGGER_NAME = "pfo_pipeline.telemetry"
_LOGGER = logging.getLogger(LOGGER_NAME)
UNBOUND_CONNECTION = "unbound"


@dataclass(frozen=True)
class TelemetryContext:
    """The metadata every event carries (the original design's required common metadata)."""

    tenant_id: str
    app_id: str
    blueprint: str
    config_version: int
    slot_id: str
    connection_id: str

    @classmethod
    def for_tenant(cls, tenant: TenantConfig) -> TelemetryContext:
        binding = tenant.primary_open_banking
        return cls(
            tenant_id=tenant.tenant_id,
            app_id=tenant.app_id,
            blueprint=tenant.blueprint,
            config_version=tenant.config_version,
            slot_id=SLOT_ID,
            connection_id=binding.connection_id if binding else UNBOUND_CONNECTION,
        )


def _utc(moment: datetime | None) -> datetime:
    """Aware UTC; a naive moment is taken to be UTC already."""
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def build_event(
    name: str,
    ctx: TelemetryContext,
    properties: Mapping[str, Any],
    *,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """A ready-to-emit event: id, name, UTC time, the common metadata and redacted properties."""
    return {
        "event_id": uuid.uuid4().hex,
        "name": name,
        "occurred_at": _utc(occurred_at).isoformat(),
        **asdict(ctx),
        "properties": redact_openbanking_payload(dict(properties)),
    }


def _unknown(obj: Any) -> str:
    # Objects without a JSON form become their `str`, IBAN-masked: a repr may hold one.
    return mask_ibans(str(obj))


def _json(value: Any) -> str:
    """Compact JSON; stdlib json takes over where orjson refuses (ints beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=_unknown).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_unknown)


def emit(
    event: dict[str, Any],
    *,
    conn: duckdb.DuckDBPyConnection | None,
    logger: logging.Logger | None = None,
) -> None:
    """Log one JSON line at INFO and store the event; any failure is a warning, never an exception.

    The event is redacted again here, so an event built by hand cannot leak what `build_event` would
    have masked.
    """
    log = logger or _LOGGER
    name = event.get("name") if isinstance(event, Mapping) else None
    try:
        safe = redact_openbanking_payload(event)
    except Exception as exc:
        _warn(log, name, exc)
        return
    # Logging and storing fail independently: a broken handler must not lose the stored event.
    try:
        log.info("%s", _json(safe))
    except Exception as exc:
        _warn(log, name, exc, "not logged")
    if conn is None:
        return
    try:
        store_event(conn, safe, _json(safe.get("properties") or {}))
    except Exception as exc:
        _warn(log, name, exc)


def _warn(log: logging.Logger, name: Any, exc: Exception, what: str = "not stored") -> None:
    """The event name and the error type only: the payload could carry what redaction missed."""
    with contextlib.suppress(Exception):  # a broken log handler must not fail the run either
        log.warning("telemetry event %s %s (%s)", str(name)[:80], what, type(exc).__name__)
