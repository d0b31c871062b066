"""What every load of a sync carries: its context (tenant, connection, Powens user, a fresh load
id), our clock, and the Europe/Paris day Powens' dates are in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pfo_pipeline.ledger.types import SyncContext

PARIS = ZoneInfo("Europe/Paris")


class SyncLog(Protocol):
    """Where a sync reports progress and skips: a `logging.Logger` or Dagster's `context.log`."""

    def info(self, msg: str) -> Any: ...

    def warning(self, msg: str) -> Any: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_context(tenant_id: str, connection_id: str, powens_user_id: int | str) -> SyncContext:
    """The context of one new load (its id is unique: `load_<uuid>`)."""
    return SyncContext(tenant_id, connection_id, str(powens_user_id), f"load_{uuid.uuid4().hex}")


def load_metadata(load_id: str, stats: Any) -> dict[str, Any]:
    """The figures every load reports (Dagster metadata, `ledger.loads` says the same)."""
    return {
        "load_id": load_id,
        "rows_in": stats.rows_in,
        "upserted": stats.upserted,
        "inserted": stats.inserted,
        "unchanged": stats.unchanged,
        "quarantined": stats.quarantined,
        "quarantine_resolved": stats.quarantine_resolved,
        "held_back": stats.held_back,
        "tombstoned": stats.tombstoned,
    }
