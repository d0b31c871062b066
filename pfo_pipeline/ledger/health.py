"""`ledger.connection_health`: the latest guardrail verdict of each Powens connection, so the UI
and analysts see why a tenant was skipped without reading run logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from pfo_pipeline.lake import run_transaction


def record_connection_health(
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str,
    connection_id: str,
    checked_at: datetime,
    status: str,
    state: str | None,
    reason: str,
) -> None:
    """The latest guardrail verdict of a connection: one row per tenant and connection."""

    def work() -> None:
        key = [tenant_id, connection_id]
        conn.execute(
            "DELETE FROM ledger.connection_health WHERE tenant_id = ? AND connection_id = ?", key
        )
        conn.execute(
            "INSERT INTO ledger.connection_health VALUES (?, ?, ?, ?, ?, ?)",
            [*key, checked_at, status, state, reason],
        )

    run_transaction(conn, work, what="record the connection's health")


NO_ACCOUNTS_YET = (
    "No bank accounts yet: Powens lists none for this user (a 4xx `noAccount` or an empty list, "
    "S3 `NoAccountError`, facts §10); the syncs succeed with nothing to load until the bank's "
    "accounts are found."
)


def accounts_note(accounts: list[Any]) -> str | None:
    """What the health row adds about the user's accounts: `NO_ACCOUNTS_YET` when Powens lists
    none (the client turns `noAccount` into an empty list), else None."""
    return None if accounts else NO_ACCOUNTS_YET
