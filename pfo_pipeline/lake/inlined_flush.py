"""Rows a lake kept inlined in its catalog (before migration 8) go to Parquet without changing
what time travel reads.

DuckLake 1.4.4's `ducklake_flush_inlined_data` writes the rows still live and drops the inlined
history: a row updated or deleted while inlined disappears from every earlier snapshot. A table's
inlined rows are therefore flushed only once their last change (insert, update or delete) is
older than the time-travel window: every snapshot left to read then sees the same live rows,
before and after the flush. Until then they stay where they are (they still read correctly).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from pfo_pipeline.lake.transactions import LAKE, run_transaction

META = f"__ducklake_metadata_{LAKE}"


def _last_change(conn: duckdb.DuckDBPyConnection, inlined_table: str) -> datetime | None:
    snapshot = conn.execute(
        f"SELECT max(greatest(begin_snapshot, coalesce(end_snapshot, begin_snapshot))) "
        f"FROM {META}.{inlined_table}"
    ).fetchall()[0][0]
    if snapshot is None:
        return None
    rows = conn.execute(
        f"SELECT snapshot_time FROM {META}.ducklake_snapshot WHERE snapshot_id = ?", [snapshot]
    ).fetchall()
    if not rows:
        return None
    when = rows[0][0]
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def flush_settled_inlined_rows(
    conn: duckdb.DuckDBPyConnection, window_days: int, now: datetime | None = None
) -> int:
    """Flush each table whose inlined rows last changed before the window; how many were."""
    now = now or datetime.now(UTC)
    horizon = now - timedelta(days=window_days)
    flushed = 0
    for table_id, inlined_table in conn.execute(
        f"SELECT table_id, table_name FROM {META}.ducklake_inlined_data_tables"
    ).fetchall():
        last = _last_change(conn, inlined_table)
        if last is None or last >= horizon:
            continue
        names = conn.execute(
            f"SELECT s.schema_name, t.table_name FROM {META}.ducklake_table t "
            f"JOIN {META}.ducklake_schema s USING (schema_id) "
            "WHERE t.table_id = ? AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL",
            [table_id],
        ).fetchall()
        if not names:
            continue
        schema, table = names[0]
        run_transaction(
            conn,
            lambda s=schema, t=table: conn.execute(
                f"CALL ducklake_flush_inlined_data('{LAKE}', schema_name => ?, table_name => ?)",
                [s, t],
            ).fetchall(),
            what=f"flush {schema}.{table}'s inlined rows",
        )
        flushed += 1
    return flushed
