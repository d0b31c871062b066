"""Merging a transactions load's stage into `ledger.bank_transactions`: rows whose Powens content
changed are rewritten (a user's category override, the first `booked_at`, `created_at` and
`first_seen_at` survive), new ids inserted, deletions become tombstones; DuckLake has no keys, so
ids stay unique here. Inside the load's one commit (`transactions_commit`)."""

from __future__ import annotations

from datetime import date, datetime

import duckdb

from pfo_pipeline.ledger.columns import TRANSACTION_COLUMNS
from pfo_pipeline.ledger.types import LoadStats


def merge_all(
    conn: duckdb.DuckDBPyConnection, now: datetime, load_id: str, stage: str, stats: LoadStats
) -> int:
    """Upsert the stage into the ledger (tombstones and inserts into `stats`); rows rewritten."""
    stats.tombstoned = conn.execute(
        f"SELECT count(*) FROM {stage} s LEFT JOIN ledger.bank_transactions t "
        "ON t.id = s.id WHERE s.status = 'cancelled' AND t.status IS DISTINCT FROM 'cancelled'"
    ).fetchall()[0][0]
    # Rewrite the existing rows whose Powens content changed, then insert the ids the
    # ledger has never seen (DuckLake has no keys, and this is 3x cheaper than an upsert
    # returning rows on a million-row first load).
    updated = _update_changed(conn, now, load_id, stage)
    stats.inserted = _insert_new(
        conn,
        now,
        load_id,
        f"{stage} s WHERE NOT EXISTS (SELECT 1 FROM ledger.bank_transactions t WHERE t.id = s.id)",
    )
    return updated


def merge_changes(
    conn: duckdb.DuckDBPyConnection, now: datetime, load_id: str, stage: str, stats: LoadStats
) -> tuple[int, list[date]]:
    """`merge_all` for a load that changes few of the ledger's rows: the staged rows are matched
    with the ledger once, noting which are new and what date the changed ones had, so the
    rewrite only looks up those dates and the insert nothing. Returns (rows rewritten, the days
    the load's new and rewritten rows were on, before and after)."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _load_changes AS "
        "SELECT s.id, s.date, t.date AS old_date, t.id IS NULL AS inserted, "
        "s.status = 'cancelled' AND t.status IS DISTINCT FROM 'cancelled' AS tombstoned "
        f"FROM {stage} s LEFT JOIN ledger.bank_transactions t ON t.id = s.id "
        "WHERE t.row_hash IS DISTINCT FROM s.row_hash"  # a status change changes the hash
    )
    try:
        stats.tombstoned, first, last = conn.execute(
            "SELECT count(*) FILTER (WHERE tombstoned), min(old_date), max(old_date) "
            "FROM _load_changes"
        ).fetchall()[0]
        updated = 0
        if first is not None:
            updated = _update_changed(conn, now, load_id, stage, dated=(first, last))
        # (An IN list, not a SEMI JOIN with the flag in its condition: that one is a nested loop.)
        stats.inserted = _insert_new(
            conn,
            now,
            load_id,
            f"{stage} s WHERE s.id IN (SELECT id FROM _load_changes WHERE inserted)",
        )
        days = conn.execute(
            "SELECT date FROM _load_changes UNION "
            "SELECT old_date FROM _load_changes WHERE old_date IS NOT NULL"
        ).fetchall()
        return updated, [day for (day,) in days]
    finally:
        conn.execute("DROP TABLE IF EXISTS _load_changes")


def _insert_new(
    conn: duckdb.DuckDBPyConnection, now: datetime, load_id: str, staged_rows: str
) -> int:
    """Insert `staged_rows` (a FROM clause over the stage aliased `s`) as new ledger rows."""
    return conn.execute(
        f"INSERT INTO ledger.bank_transactions ({', '.join(TRANSACTION_COLUMNS)}, "
        "created_at, updated_at, first_seen_at, row_hash, load_id) "
        f"SELECT {', '.join(TRANSACTION_COLUMNS)}, ?, ?, ?, row_hash, ? FROM {staged_rows}",
        [now, now, now, load_id],
    ).fetchall()[0][0]


def _update_changed(
    conn: duckdb.DuckDBPyConnection,
    now: datetime,
    load_id: str,
    stage: str,
    dated: tuple[date, date] | None = None,
) -> int:
    """Rewrite ledger rows whose Powens-owned content changed (content hash); how many.
    `dated`: every such row is dated within these bounds (the scan skips other dates).

    A user's category override survives; `booked_at` keeps the first time the row was booked;
    `created_at` and `first_seen_at` keep the row's first load.
    """
    replaced = [
        f"{c} = n.{c}"
        for c in TRANSACTION_COLUMNS
        if c not in ("id", "standardized_category", "category_source", "booked_at")
    ]
    return conn.execute(
        f"UPDATE ledger.bank_transactions t SET {', '.join(replaced)}, "
        "standardized_category = CASE WHEN t.category_source = 'user' "
        "THEN t.standardized_category ELSE n.standardized_category END, "
        "category_source = CASE WHEN t.category_source = 'user' THEN 'user' "
        "ELSE n.category_source END, "
        "booked_at = coalesce(t.booked_at, n.booked_at), "
        "row_hash = n.row_hash, load_id = ?, updated_at = ? "
        f"FROM {stage} n "
        "WHERE t.id = n.id AND t.row_hash <> n.row_hash"
        + (" AND t.date BETWEEN ? AND ?" if dated else ""),
        [load_id, now, *(dated or ())],
    ).fetchall()[0][0]
