"""Internal transfers between a family's own accounts, recognised from both legs (set-based SQL).

A debit on one account and the opposite credit on another own account within 3 days are one
internal transfer: both legs are marked and share a `transfer_pair_id`, so cashflow excludes them.
A row whose counterparty IBAN is one of the family's own accounts is one too, even unpaired.
Loan accounts are left out: a mortgage instalment stays housing spending on the checking account.
User overrides are never touched; running it twice changes nothing.

The pairs are found chunk by chunk of the history (consecutive days holding at most
`CHUNK_LEGS` legs, read with 6 days either side), which gives exactly the pairs of the whole
history at once (see transfer_marks.sql) while the memory follows the chunk, not the history.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import duckdb

from pfo_pipeline.sql_files import load_sql

CHUNK_LEGS = 150_000
# Legs read either side of a chunk: a credit's own candidates lie within 6 days of its debit.
MARGIN = timedelta(days=6)


def mark_internal_transfers(conn: duckdb.DuckDBPyConnection, tenant_id: str) -> int:
    """Mark both legs of every internal transfer of a tenant; returns the rows changed."""
    params = {"tenant": tenant_id}
    conn.execute("CREATE OR REPLACE TEMP TABLE _transfer_marks (id VARCHAR, pair_id VARCHAR)")
    try:
        days = conn.execute(load_sql(__name__, "transfer_legs_by_day"), params).fetchall()
        for start, stop in day_chunks(days, CHUNK_LEGS):
            # Plain DATE bounds (not date arithmetic in SQL) so the scan can filter on them.
            bounds = {
                "start": start,
                "stop": stop,
                "read_from": start - MARGIN,
                "read_to": stop + MARGIN,
            }
            conn.execute(load_sql(__name__, "transfer_marks"), {**params, **bounds})
        conn.execute(load_sql(__name__, "transfer_iban_marks"), params)
        return conn.execute(load_sql(__name__, "transfer_pairing")).fetchall()[0][0]
    finally:
        conn.execute("DROP TABLE IF EXISTS _transfer_marks")


def day_chunks(days: list[tuple[date, int]], limit: int) -> Iterator[tuple[date, date]]:
    """[start, stop) day ranges covering `days` (ascending (day, legs)), each holding at most
    `limit` legs unless one day alone holds more."""
    start: date | None = None
    held = 0
    last = None
    for day, legs in days:
        if start is not None and held + legs > limit:
            yield start, last + timedelta(days=1)  # type: ignore[operator]
            start, held = None, 0
        if start is None:
            start = day
        held += legs
        last = day
    if start is not None:
        yield start, last + timedelta(days=1)  # type: ignore[operator]
