"""`ledger.loads`: every load recorded from its start to its end (rows in, upserted, quarantined,
tombstoned, its window and cursor), and the lake snapshot it committed, so `pfo sql
--as-of-load` reads the ledger exactly as that load left it."""

from __future__ import annotations

from datetime import datetime

import duckdb

from pfo_pipeline.lake import last_snapshot, run_transaction
from pfo_pipeline.ledger.types import LoadStats, SyncContext
from pfo_pipeline.sql_files import load_sql


def start_load(
    conn: duckdb.DuckDBPyConnection, ctx: SyncContext, stream: str, mode: str, now: datetime
) -> None:
    """Record the load as running (committed at once) and close out loads a crash left open."""

    def work() -> None:
        conn.execute(
            load_sql(__name__, "abandon_running_loads"),
            {
                "now": now,
                "tenant_id": ctx.tenant_id,
                "connection_id": ctx.connection_id,
                "stream": stream,
            },
        )
        conn.execute(
            "INSERT INTO ledger.loads (load_id, tenant_id, connection_id, stream, started_at, "
            "status, mode) VALUES (?, ?, ?, ?, ?, 'running', ?)",
            [ctx.load_id, ctx.tenant_id, ctx.connection_id, stream, now, mode],
        )

    run_transaction(conn, work, what=f"start {stream} load")


def finish_load(
    conn: duckdb.DuckDBPyConnection,
    load_id: str,
    stats: LoadStats,
    now: datetime,
    *,
    window: tuple[str | None, str | None] = (None, None),
    cursor: tuple[datetime | None, datetime | None] = (None, None),
) -> None:
    """Mark the load succeeded with its figures; inside the load's own commit."""
    conn.execute(
        load_sql(__name__, "finish_load"),
        {
            "now": now,
            "rows_in": stats.rows_in,
            "upserted": stats.upserted,
            "unchanged": stats.unchanged,
            "quarantined": stats.quarantined,
            "tombstoned": stats.tombstoned,
            "window_start": window[0],
            "window_end": window[1],
            "cursor_before": cursor[0],
            "cursor_after": cursor[1],
            "upstream_moved": stats.upstream_moved,
            "cursor_held": stats.cursor_held,
            "held_back": stats.held_back,
            "quarantine_resolved": stats.quarantine_resolved,
            "load_id": load_id,
        },
    )


def fail_load(conn: duckdb.DuckDBPyConnection, load_id: str, error: str, now: datetime) -> None:
    """Mark a load failed; the message is the error's text (our errors carry no PII)."""
    run_transaction(
        conn,
        lambda: conn.execute(
            "UPDATE ledger.loads SET status = 'failed', finished_at = ?, error = ? "
            "WHERE load_id = ?",
            [now, error[:2000], load_id],
        ),
        what="record a failed load",
    )


def record_snapshot(conn: duckdb.DuckDBPyConnection, load_id: str) -> int | None:
    """Note in `ledger.loads` the lake snapshot the load committed (its own small commit, after
    the load's)."""
    snapshot = last_snapshot(conn)
    if snapshot is not None:
        run_transaction(
            conn,
            lambda: conn.execute(
                "UPDATE ledger.loads SET snapshot_id = ? WHERE load_id = ?", [snapshot, load_id]
            ),
            what="record the load's snapshot",
        )
    return snapshot
