"""Date windows that split one transactions read into independent `_links.next` chains.

Powens answers a page in hundreds of milliseconds and one chain is strictly sequential, so a big
read is bound by latency x pages; chains over disjoint date windows run side by side.

Why the union of the windows is the single chain's result, exactly:
- Every transaction has one `date` (chains filter on it, `filter=date`). The windows cover the
  requested range with inclusive bounds that meet without overlap (one ends the day before the
  next begins; days are discrete), and the outer ones stay open when the request is: a row dated
  on a boundary is in exactly one window, and a row outside Powens' announced
  `first_date`..`last_date` is still in the first or the last one.

Why it stays right while Powens changes its data during the read (the `churn_per_page` and
`backdated_import_rows` faults):
- A change Powens makes while the windows are read may carry any `last_update`, even hours
  before the load began (an import stamps rows with the time it read them). So the windows do not
  rely on stamps: each chain's `ChainWatch` reports its `total` or announced dates changing, a
  short page before its end, or a row changed after the load began; a row read twice (it moved
  from a window already read into one not read yet) is a copy the stage finds; and the whole
  listing's first page, read again after the last window, shows a row that moved into a window
  already read (new rows land on top of a date-ordered listing); and the windows' first `total`s,
  added up, differ from the first page's when the listing changed before a window was first read
  (`TransactionFetch._windows_add_up`). Any of these keeps the cursor
  where the load began (`ledger/cursor_rule.py`), so the next sync reads the same range again
  (upserts are idempotent). A single chain is the one-window case.
- Incremental reads window the same way: the `last_update` filter only ever gains rows while the
  load runs (unless a change is stamped before the filter's bound, which then moves `total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Inclusive `min_date`..`max_date`; None leaves that side open."""

    min_date: date | None
    max_date: date | None


def plan_windows(
    count: int,
    *,
    first_date: date | None,
    last_date: date | None,
    min_date: date | None = None,
    max_date: date | None = None,
) -> list[DateWindow]:
    """Up to `count` windows of about equal width over the dates Powens announced, newest first.

    They cover `min_date`..`max_date` (open sides stay open) without gap or overlap. One window
    (the request itself) when the span is unknown, empty or a single day.
    """
    lo = max(d for d in (first_date, min_date) if d is not None) if first_date or min_date else None
    hi = min(d for d in (last_date, max_date) if d is not None) if last_date or max_date else None
    whole = [DateWindow(min_date, max_date)]
    if lo is None or hi is None or hi < lo:
        return whole
    days = (hi - lo).days + 1
    parts = min(count, days)
    if parts < 2:
        return whole
    cuts = [lo + timedelta(days=days * i // parts) for i in range(1, parts)]
    starts = [min_date, *cuts]
    ends = [cut - timedelta(days=1) for cut in cuts] + [max_date]
    return [DateWindow(s, e) for s, e in zip(starts, ends, strict=True)][::-1]
