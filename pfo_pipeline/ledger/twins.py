"""Reissued twins: Powens may delete a pending row and re-issue it booked under a new id. The
booked twin is linked to the cancelled pending row (same account and amount, a later Powens id,
booked 0 to 10 days after) one-to-one, so lineage shows it and cashflow counts the money once.

A pass links every pending row and booked row still unlinked that are each other's nearest
candidate. Its links can leave a row whose nearest was just linked with a new nearest, which
the next pass links: the history is not settled after one pass, and a pass of an incremental
load must link exactly what a pass over the whole history would. It reads only around the days
where such a link can appear:
- A row's nearest candidate lies between it and any other candidate of it (a booked row's
  after its pending one, a pending row's before its booked one). So the pairs a pass finds on
  a stretch of consecutive days are pairs of the whole history.
- A pair the whole history links now that the last pass did not has its pending row on or
  before, and its booked row on or after, a day a row came or went since: a row a load
  inserted or rewrote (its day before and after), or the nearest of one of the pair, linked
  by the last pass. Reading 10 days either side of those days finds them.
- The last pass's links are not dated here: it keeps instead the days of the pending rows the
  next pass will link because of them (`ledger.twin_linkings`). A row whose nearest it linked
  lies behind that link (a pending row before its pending row, a booked row after its booked
  one), so its candidates lie on the same stretch: the next pass's pairs are found there.
With no record (a first pass), or more separate stretches than `MAX_RANGES`, the pass reads the
whole history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import duckdb

from pfo_pipeline.ledger.day_ranges import WHOLE_HISTORY, around
from pfo_pipeline.sql_files import load_sql

# A booked twin is dated 0 to 10 days after its pending row: the days read either side of a day
# where a link can appear.
LINK_REACH = timedelta(days=10)
# More separate stretches of days than this and one pass over the whole history is cheaper.
MAX_RANGES = 4


def link_reissued_twins(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, changed_days: Iterable[date] | None = None
) -> int:
    """Link a tenant's booked twins to their cancelled pending rows; how many links were made.

    `changed_days` (the dates an incremental load's rows had before and after it) limits the
    pass to where those changes, and the last pass, left links to make; None reads the whole
    history."""
    params = {"tenant": tenant_id}
    last = conn.execute(
        "SELECT unsettled_days FROM ledger.twin_linkings WHERE tenant_id = $tenant", params
    ).fetchall()
    ranges = [WHOLE_HISTORY]
    if changed_days is not None and len(last) == 1:
        scoped = around([*changed_days, *last[0][0]], LINK_REACH, LINK_REACH)
        if len(scoped) <= MAX_RANGES:
            ranges = scoped
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _twin_links "
        "(pending_id VARCHAR, booked_id VARCHAR, pending_date DATE, booked_date DATE)"
    )
    try:
        for start, stop in ranges:
            conn.execute(load_sql(__name__, "twin_links"), params | {"from": start, "to": stop})
        linked = sum(_apply_links(conn, start, stop) for start, stop in ranges)
        days = conn.execute(
            "SELECT DISTINCT pending_date FROM _twin_links WHERE booked_id IS NULL "
            "ORDER BY pending_date"
        ).fetchall()
        kept = [day for (day,) in days]
        if not last or kept != list(last[0][0]):
            conn.execute("DELETE FROM ledger.twin_linkings WHERE tenant_id = $tenant", params)
            conn.execute(
                "INSERT INTO ledger.twin_linkings VALUES ($tenant, $days, now())",
                params | {"days": kept},
            )
        return linked
    finally:
        conn.execute("DROP TABLE IF EXISTS _twin_links")


def _apply_links(conn: duckdb.DuckDBPyConnection, start: date, stop: date) -> int:
    """Link the booked rows of `_twin_links` found on the stretch [start, stop), looking up only
    the days they are on (a row with no booked row is a day kept for the next pass)."""
    first, last = conn.execute(
        "SELECT min(booked_date), max(booked_date) FROM _twin_links "
        "WHERE booked_date >= ? AND booked_date < ?",
        [start, stop],
    ).fetchall()[0]
    if first is None:
        return 0
    linked = conn.execute(load_sql(__name__, "twin_link"), {"from": first, "to": last})
    return linked.fetchall()[0][0]
