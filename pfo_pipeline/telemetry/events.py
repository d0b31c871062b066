"""Telemetry events (SPEC §9): common tenant metadata, redacted, to a structured log line and to
`telemetry.events`. Emitting never raises: telemetry must not fail the run that emits it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from pfo_pipeline.telemetry.redaction import redact_openbanking_payload
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

logger = logging.getLogger("pfo_pipeline.telemetry")

DDL = """
CREATE SCHEMA IF NOT EXISTS telemetry;
CREATE TABLE IF NOT EXISTS telemetry.events (
    event_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    tenant_id VARCHAR NOT NULL,
    app_id VARCHAR NOT NULL,
    blueprint VARCHAR NOT NULL,
    config_version INTEGER NOT NULL,
    slot_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    properties JSON
);
"""


@dataclass(frozen=True)
class TelemetryContext:
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
            connection_id=binding.connection_id if binding else "unbound",
        )


def build_event(
    name: str,
    ctx: TelemetryContext,
    properties: Mapping[str, Any],
    *,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "name": name,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        **asdict(ctx),
        "properties": redact_openbanking_payload(dict(properties)),
    }


def emit(
    event: dict[str, Any],
    *,
    conn: duckdb.DuckDBPyConnection | None,
    log: logging.Logger | None = None,
) -> None:
    """Log one JSON line and store the event; any failure is a warning, never an exception."""
    log = log or logger
    try:
        safe = redact_openbanking_payload(event)
        log.info(orjson.dumps(safe, default=str).decode())
        if conn is not None:
            conn.execute(DDL)
            conn.execute(
                "INSERT INTO telemetry.events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [
                    safe["event_id"],
                    safe["name"],
                    safe["occurred_at"],
                    safe["tenant_id"],
                    safe["app_id"],
                    safe["blueprint"],
                    safe["config_version"],
                    safe["slot_id"],
                    safe["connection_id"],
                    orjson.dumps(safe["properties"], default=str).decode(),
                ],
            )
    except Exception as exc:
        log.warning("telemetry event %s not stored (%s)", event.get("name"), type(exc).__name__)
