"""Internal transfers between a family's own accounts, recognised from both legs (set-based SQL).

A debit on one account and the opposite credit on another own account within 3 days are one
internal transfer: both legs are marked and share a `transfer_pair_id`, so cashflow excludes them.
A row whose counterparty IBAN is one of the family's own accounts is one too, even unpaired.
Loan accounts are left out: a mortgage instalment stays housing spending on the checking account.
User overrides are never touched; running it twice changes nothing.

The pairs are found chunk by chunk of the history (consecutive days read with 6 days either
side, at most `CHUNK_LEGS` legs read in all), which gives exactly the pairs of the whole history
at once (see transfer_marks.sql) while the memory follows the chunk, not the history. The chunks
read the legs from a local copy made once (transfer_legs.sql says why), and their marks are
gathered in Arrow and applied in one statement.

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

import bisect
import itertools
from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import duckdb
import pyarrow as pa

from pfo_pipeline.lake import registered
from pfo_pipeline.lake.scratch import Scratch
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
# A mark: a leg, its pair (None for an unpaired payment to or from an own IBAN), its date, and
# whether its row does not carry the mark yet.
MARKS = pa.schema(
    [("id", pa.string()), ("pair_id", pa.string()), ("date", pa.date32()), ("stale", pa.bool_())]
)


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
    # Payments to or from these are internal transfers even unpaired (transfer_legs.sql).
    ibans = conn.execute(load_sql(__name__, "transfer_own_ibans"), params).fetchall()[0][0]
    found: list[pa.Table] = []
    scratch = Scratch(conn)  # the legs hold counterparty marks: a private folder, swept if killed
    try:
        copied: list[tuple[str, date, date]] = []  # each range's legs file, and the range
        for number, (start, stop) in enumerate(ranges):
            bounds = {"from": start, "to": stop}
            days = conn.execute(load_sql(__name__, "transfer_legs_by_day"), params | bounds)
            chunks = list(day_chunks(days.fetchall(), CHUNK_LEGS, MARGIN))
            if not chunks:
                continue
            # The range's legs, read once (see transfer_legs.sql); plain DATE bounds (not date
            # arithmetic in SQL) so the scans can filter on them.
            read = {"read_from": shift(start, -MARGIN), "read_to": shift(stop, MARGIN)}
            legs = str(
                scratch.copy_to_parquet(
                    f"legs_{number}",
                    load_sql(__name__, "transfer_legs"),
                    params | read | {"ibans": ibans},
                )
            )
            copied.append((legs, start, stop))
            for chunk_start, chunk_stop in chunks:
                chunk = {
                    "legs": legs,
                    "start": chunk_start,
                    "stop": chunk_stop,
                    "read_from": shift(chunk_start, -MARGIN),
                    "read_to": shift(chunk_stop, MARGIN),
                }
                found.append(_marks(conn, "transfer_marks", chunk))
        with registered(conn, _transfer_pairs=_concat(found)):
            for legs, start, stop in copied:
                # Rows at least 3 days inside a range have all their pairs in it: only theirs
                # are known.
                if not whole:
                    start, stop = inside(start, stop, PAIR_REACH)
                bounds = {"legs": legs, "from": start, "to": stop}
                found.append(_marks(conn, "transfer_iban_marks", bounds))
    finally:
        scratch.close()
    with registered(conn, _transfer_marks=_concat(found)):
        changed = _apply_marks(conn)
    if whole:
        conn.execute("DELETE FROM ledger.transfer_pairings WHERE tenant_id = $tenant", params)
        conn.execute(
            "INSERT INTO ledger.transfer_pairings VALUES ($tenant, $own, now())",
            params | {"own": own},
        )
    return changed


def _marks(conn: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pa.Table:
    """The marks a query finds (id, pair_id, date, stale), as Arrow."""
    found = conn.execute(load_sql(__name__, sql), params).fetch_arrow_table()
    return found.rename_columns(MARKS.names).cast(MARKS)


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if tables else MARKS.empty_table()


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


def day_chunks(
    days: list[tuple[date, int]], limit: int, margin: timedelta = timedelta(0)
) -> Iterator[tuple[date, date]]:
    """[start, stop) day ranges covering `days` (ascending (day, legs)), each reading at most
    `limit` legs with the `margin` of days either side it is read with, unless one day and its
    margins alone hold more. (The margins count: the denser the history, the more legs its days
    hold, and a bound on the chunk alone let what a chunk reads grow with it.)"""
    dates = [day for day, _ in days]
    held = list(itertools.accumulate((legs for _, legs in days), initial=0))

    def read(first: int, last: int) -> int:
        """Legs on the days read for a chunk of the days first..last (indexes into `days`)."""
        low = bisect.bisect_left(dates, shift(dates[first], -margin))
        high = bisect.bisect_right(dates, shift(dates[last], margin))
        return held[high] - held[low]

    first = 0
    while first < len(days):
        last = first
        while last + 1 < len(days) and read(first, last + 1) <= limit:
            last += 1
        yield dates[first], dates[last] + timedelta(days=1)
        first = last + 1
