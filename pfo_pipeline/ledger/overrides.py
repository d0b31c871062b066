"""A user's category for a transaction wins over rules and transfers, and later syncs keep it."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from pfo_pipeline.categoriser.rules import CATEGORIES
from pfo_pipeline.lake import run_transaction
from pfo_pipeline.ledger.transfers import forget_pairing
from pfo_pipeline.sql_files import load_sql


def set_category_override(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, transaction_id: str, category: str
) -> None:
    """Record the user's category (replacing an earlier one) and apply it, in one commit."""
    if category not in CATEGORIES:
        raise ValueError(f"category: {category!r} is not in the taxonomy {CATEGORIES}")
    found = conn.execute(
        "SELECT count(*) FROM ledger.bank_transactions WHERE tenant_id = ? AND id = ?",
        [tenant_id, transaction_id],
    ).fetchall()[0][0]
    if not found:
        raise ValueError(
            f"transaction_id: {transaction_id!r} is not a transaction of {tenant_id!r}"
        )

    def work() -> None:
        conn.execute(
            "DELETE FROM ledger.category_overrides WHERE tenant_id = ? AND transaction_id = ?",
            [tenant_id, transaction_id],
        )
        conn.execute(
            "INSERT INTO ledger.category_overrides VALUES (?, ?, ?, ?)",
            [tenant_id, transaction_id, category, datetime.now(UTC)],
        )
        apply_category_overrides(conn, tenant_id)

    run_transaction(conn, work, what="set a category override")


def apply_category_overrides(conn: duckdb.DuckDBPyConnection, tenant_id: str) -> int:
    """Re-apply every override of a tenant (set-based); returns the rows changed.

    A row taking the user's category leaves the transfer legs outside any load, which the next
    transfer pairing could not scope from its own loads' changes: it reads the whole history."""
    changed = conn.execute(
        load_sql(__name__, "apply_category_overrides"), {"tenant": tenant_id}
    ).fetchall()[0][0]
    if changed:
        forget_pairing(conn, tenant_id)
    return changed
