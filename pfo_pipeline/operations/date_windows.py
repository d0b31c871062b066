"""Date windows that split one transactions read into independent `_links.next` chains.

Powens answers a page in hundreds of milliseconds and one chain is strictly sequential, so a big
read is bound by latency x pages; chains over disjoint date windows run side by side.

Why the union of the windows is the single chain's result, exactly:
- Every transaction has one `date` (chains filter on it, `filter=date`). The windows cover the
  requested range with inclusive bounds that meet without overlap (one ends the day before the
  next begins; days are discrete), and the outer ones stay open when the request is: a row dated
  on a boundary is in exactly one window, and a row outside Powens' announced
  `first_date`..`last_date` is still in the first or the last one.

Why it stays right while Powens changes its data during the read (the `churn_per_page` fault):
- Every change stamps the row's `last_update` with Powens' clock, later than the `Date` of the
  load's first answer. The load's cursor never passes that first clock (`TransactionStage.
  next_cursor`), so a change the load missed is read by the next incremental sync: a pending row
  booked into a window already read, or edited after its window was read.
- A row read twice (it moved from a window already read into one not read yet) comes as two
  versions: the newest wins and the stage holds the cursor, as it does for a single chain.
- Offset paging can skip an *unchanged* row only when more rows ranked above it in its window
  leave the window than enter it between two pages of that chain. Then either the chain's `total`
  falls on a later page, or a row that entered the unread part is served on a later page with a
  `last_update` after the load began (`ChainWatch`). Both hold the cursor where it was, so the
  next sync reads the same range again (upserts are idempotent). A single chain is the one-window
  case: a row moving down past its read position leaves the part above it for the unread part,
  and is caught the same way even when the chain never read it before (inserted above the read
  position, then backdated: the chain's `total` only grew).
- Incremental reads window the same way: the `last_update` filter only ever gains rows, so only
  the window moves above can make a row leave a chain, and the argument is unchanged.
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
