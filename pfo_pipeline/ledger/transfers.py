"""Internal transfers between a family's own accounts, recognised from both legs (set-based SQL).

A debit on one account and the opposite credit on another own account within 3 days are one
internal transfer: both legs are marked and share a `transfer_pair_id`, so cashflow excludes them.
A row whose counterparty IBAN is one of the family's own accounts is one too, even unpaired.
Loan accounts are left out: a mortgage instalment stays housing spending on the checking account.
User overrides are never touched; running it twice changes nothing.

The pairs are found chunk by chunk of the history (consecutive days holding at most
`CHUNK_LEGS` legs, read with 6 days either side), which gives exactly the pairs of the whole
history at once (see transfer_marks.sql) while the memory follows the chunk, not the history.

An incremental load re-pairs only the days its changes can reach (`changed_days`: the dates of
every row it inserted or rewrote, before and after). A pair is two mutual nearest legs, not a
chain: a leg added or taken away on day d changes only the candidates of legs within 3 days of
it, so only pairs holding such a leg, both legs within 6 days of d, can appear or break. Whether
a row is paired (unpaired, its own-IBAN mark applies) is decided by the pairs whose debit lies
within 3 days of it: pairing the debits within 9 days of every changed day marks the rows
within 6 days exactly as the whole history would, and every other row keeps the mark the last
pairing gave it, which is the whole history's. That holds while the legs change only through
loads: a pairing reads the whole history again when the tenant's own accounts are not those it
last paired against, or when there is no such record (`ledger.transfer_pairings`: a first
pairing, or an applied user override took a leg out, see `forget_pairing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import duckdb

from pfo_pipeline.ledger.day_ranges import WHOLE_HISTORY, around, inside, shift
from pfo_pipeline.sql_files import load_sql

CHUNK_LEGS = 150_000
# A pair's legs lie within 3 days of each other.
PAIR_REACH = timedelta(days=3)
# Legs read either side of a chunk: a credit's own candidates lie within 6 days of its debit.
MARGIN = 2 * PAIR_REACH
# Debits re-paired around a changed day: every pair of the rows whose mark it can change (legs
# within 6 days of it, whose pairs' debits lie within 3 days of them).
SCOPE_REACH = MARGIN + PAIR_REACH


def mark_internal_transfers(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, changed_days: Iterable[date] | None = None
) -> int:
    """Mark both legs of every internal transfer of a tenant; returns the rows changed.

    `changed_days` (the dates an incremental load's rows had before and after it) limits the
    pairing to the days those changes can reach; None pairs the whole history."""
    params = {"tenant": tenant_id}
    own = conn.execute(load_sql(__name__, "transfer_own_accounts"), params).fetchall()[0][0]
    last = conn.execute(
        "SELECT own_accounts FROM ledger.transfer_pairings WHERE tenant_id = $tenant", params
    ).fetchall()
    whole = changed_days is None or [own] != [a for (a,) in last]
    ranges = [WHOLE_HISTORY] if whole else around(changed_days or [], SCOPE_REACH, SCOPE_REACH)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _transfer_marks "
        "(id VARCHAR, pair_id VARCHAR, date DATE, stale BOOLEAN)"
    )
    try:
        for start, stop in ranges:
            bounds = {"from": start, "to": stop}
            days = conn.execute(load_sql(__name__, "transfer_legs_by_day"), params | bounds)
            for chunk_start, chunk_stop in day_chunks(days.fetchall(), CHUNK_LEGS):
                # Plain DATE bounds (not date arithmetic in SQL) so the scan can filter on them.
                chunk = {
                    "start": chunk_start,
                    "stop": chunk_stop,
                    "read_from": shift(chunk_start, -MARGIN),
                    "read_to": shift(chunk_stop, MARGIN),
                }
                conn.execute(load_sql(__name__, "transfer_marks"), params | chunk)
        for start, stop in ranges:
            # Rows at least 3 days inside a range have all their pairs in it: only theirs are known.
            if not whole:
                start, stop = inside(start, stop, PAIR_REACH)
            bounds = {"from": start, "to": stop}
            conn.execute(load_sql(__name__, "transfer_iban_marks"), params | bounds)
        changed = _apply_marks(conn)
        if whole:
            conn.execute("DELETE FROM ledger.transfer_pairings WHERE tenant_id = $tenant", params)
            conn.execute(
                "INSERT INTO ledger.transfer_pairings VALUES ($tenant, $own, now())",
                params | {"own": own},
            )
        return changed
    finally:
        conn.execute("DROP TABLE IF EXISTS _transfer_marks")


def _apply_marks(conn: duckdb.DuckDBPyConnection) -> int:
    """Write the marks rows do not carry yet, looking up only the days those rows are on."""
    first, last = conn.execute(
        "SELECT min(date), max(date) FROM _transfer_marks WHERE stale"
    ).fetchall()[0]
    if first is None:
        return 0
    return conn.execute(
        load_sql(__name__, "transfer_pairing"), {"from": first, "to": last}
    ).fetchall()[0][0]


def forget_pairing(conn: duckdb.DuckDBPyConnection, tenant_id: str) -> None:
    """The tenant's legs changed outside a load (a user override took one out): its next pairing
    reads the whole history."""
    conn.execute("DELETE FROM ledger.transfer_pairings WHERE tenant_id = ?", [tenant_id])


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
