"""An upsert for the small ledger tables (accounts, balances): DuckLake has no keys, so ids stay
unique here (update what exists, insert what does not), and a row is rewritten only when its
content hash changed (a re-run with no upstream change leaves the table's content equal)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from pfo_pipeline.lake import registered
from pfo_pipeline.ledger.columns import arrow_of, content_hash_sql
from pfo_pipeline.ledger.types import SyncContext

# The tables this upsert writes (their names are formatted into SQL: only these).
UPSERTED_TABLES = frozenset({"bank_accounts", "account_balances"})


def upsert_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    columns: list[str],
    hashed: list[str],
    ctx: SyncContext,
    now: datetime,
    *,
    has_updated_at: bool = True,
) -> tuple[int, int]:
    """Rewrite rows whose content hash changed, insert new ids, leave identical rows untouched;
    returns (updated, inserted). Inside the load's commit."""
    if table not in UPSERTED_TABLES:
        raise ValueError(f"upsert_rows writes {sorted(UPSERTED_TABLES)}, not {table!r}")
    if frame.empty:
        return 0, 0
    with registered(conn, _upsert_batch=arrow_of(frame, columns)):
        sets = [f"{c} = n.{c}" for c in columns if c != "id"]
        sets += ["row_hash = n.row_hash", "load_id = ?"]
        params: list[object] = [ctx.load_id]
        if has_updated_at:
            sets.append("updated_at = ?")
            params.append(now)
        updated = conn.execute(
            f"UPDATE ledger.{table} t SET {', '.join(sets)} "
            f"FROM (SELECT *, {content_hash_sql(hashed)} AS row_hash FROM _upsert_batch) n "
            "WHERE t.id = n.id AND t.row_hash <> n.row_hash",
            params,
        ).fetchall()[0][0]
        extra_cols = "created_at, " + ("updated_at, " if has_updated_at else "")
        extra_vals = "?, " + ("?, " if has_updated_at else "")
        inserted = conn.execute(
            f"INSERT INTO ledger.{table} ({', '.join(columns)}, {extra_cols} row_hash, load_id) "
            f"SELECT {', '.join(columns)}, {extra_vals} {content_hash_sql(hashed)}, ? "
            f"FROM _upsert_batch b WHERE NOT EXISTS "
            f"(SELECT 1 FROM ledger.{table} t WHERE t.id = b.id)",
            [*([now, now] if has_updated_at else [now]), ctx.load_id],
        ).fetchall()[0][0]
    return updated, inserted
