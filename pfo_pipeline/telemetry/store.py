"""`telemetry.events`: storing an already redacted event, idempotently by event id (the lake has no
keys, so an event stored twice must still be one row). Redaction is the telemetry package's job;
this module only writes what it is given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from pfo_pipeline.lake import run_transaction

# The event's own columns, in the table's order; `properties` (JSON text) follows them.
EVENT_COLUMNS = (
    "event_id",
    "name",
    "occurred_at",
    "tenant_id",
    "app_id",
    "blueprint",
    "config_version",
    "slot_id",
    "connection_id",
)
_INSERT_EVENT = (
    f"INSERT INTO telemetry.events ({', '.join(EVENT_COLUMNS)}, properties) "
    f"SELECT {', '.join('?' for _ in EVENT_COLUMNS)}, ? WHERE NOT EXISTS "
    "(SELECT 1 FROM telemetry.events WHERE event_id = ?)"
)


def store_event(
    conn: duckdb.DuckDBPyConnection, event: Mapping[str, Any], properties_json: str
) -> None:
    """One row of `telemetry.events` from a redacted event (its `EVENT_COLUMNS`) and its
    properties as JSON text; nothing if an event with this id is already stored."""
    values = [*(event[column] for column in EVENT_COLUMNS), properties_json, event["event_id"]]
    run_transaction(
        conn, lambda: conn.execute(_INSERT_EVENT, values), what="store a telemetry event"
    )
