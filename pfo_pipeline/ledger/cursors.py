"""`ledger.sync_cursors`: where each tenant's incremental transactions sync resumes. Written only
inside the commit of the rows it covers, so it never runs ahead of them (the value itself is
`cursor_rule`'s)."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from pfo_pipeline.ledger.types import SyncContext


def read_cursor(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, connection_id: str, stream: str
) -> datetime | None:
    rows = conn.execute(
        "SELECT high_watermark FROM ledger.sync_cursors "
        "WHERE tenant_id = ? AND connection_id = ? AND stream = ?",
        [tenant_id, connection_id, stream],
    ).fetchall()
    return rows[0][0] if rows else None


def set_cursor(
    conn: duckdb.DuckDBPyConnection, ctx: SyncContext, stream: str, value: datetime | None
) -> None:
    """Write the stream's cursor (None removes it: the next sync reads everything); a cursor
    equal to the stored one is left untouched, so a no-op load changes nothing."""
    key = [ctx.tenant_id, ctx.connection_id, stream]
    where = "WHERE tenant_id = ? AND connection_id = ? AND stream = ?"
    if value is None:
        conn.execute(f"DELETE FROM ledger.sync_cursors {where}", key)
        return
    stored = conn.execute(f"SELECT high_watermark FROM ledger.sync_cursors {where}", key).fetchall()
    if stored and stored[0][0] == value:
        return
    conn.execute(f"DELETE FROM ledger.sync_cursors {where}", key)
    conn.execute(
        "INSERT INTO ledger.sync_cursors VALUES (?, ?, ?, ?, ?)", [*key, value, ctx.load_id]
    )


def overlap_start(cursor: datetime | None, overlap: timedelta) -> datetime | None:
    """Where an incremental read starts: the cursor less the overlap (None: read everything)."""
    return None if cursor is None else cursor - overlap
