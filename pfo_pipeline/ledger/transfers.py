"""Internal transfers between a family's own accounts, recognised from both legs (set-based SQL).

A debit on one account and the opposite credit on another own account within 3 days are one
internal transfer: both legs are marked and share a `transfer_pair_id`, so cashflow excludes them.
A row whose counterparty IBAN is one of the family's own accounts is one too, even unpaired.
Loan accounts are left out: a mortgage instalment stays housing spending on the checking account.
User overrides are never touched; running it twice changes nothing.
"""

from __future__ import annotations

import duckdb

from pfo_pipeline.sql_files import load_sql


def mark_internal_transfers(conn: duckdb.DuckDBPyConnection, tenant_id: str) -> int:
    """Mark both legs of every internal transfer of a tenant; returns the rows changed."""
    conn.execute(load_sql(__name__, "transfer_marks"), {"tenant": tenant_id})
    try:
        return conn.execute(load_sql(__name__, "transfer_pairing")).fetchall()[0][0]
    finally:
        conn.execute("DROP TABLE IF EXISTS _transfer_marks")
