"""Signs, page by page, that Powens' transactions listing moved while a load read it.

A chain's pages are positions in one listing; when the listing changes between two requests the
positions shift and a row can be skipped or never served, whatever `last_update` Powens gives it
(`ledger/cursor_rule.py` says what the load then does with its cursor). What one chain can see:

- `total` changing between its pages (a row entered or left the listing);
- the announced `first_date`/`last_date` changing (a row entered outside the known range);
- a page shorter than `limit` before the end of the chain (a full page was due);
- a row served after the load's first request whose `last_update` is later than Powens' clock
  at that first request (it changed during the load).

`ListingSignature` is what the load's first page looked like; the same page read again after the
last one must look the same, else the listing moved meanwhile (the only sign left when Powens
pages by cursor and sends no `total`: new rows land on top of a date-ordered listing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pfo_pipeline.powens.transaction_pages import TransactionPage


class ChainWatch:
    """What one chain's pages say about the listing moving while the chain is read."""

    def __init__(self, started_by_powens: datetime | None, limit: int) -> None:
        self._started = started_by_powens
        self._limit = limit
        self._total: int | None = None
        self._range: tuple[date | None, date | None] | None = None
        self._pages = 0

    def see(self, page: TransactionPage, *, after_first_request: bool) -> list[str]:
        """Why this page shows the listing moved (empty: no sign of it)."""
        reasons: list[str] = []
        total, previous = page.total, self._total
        if self._pages and total is not None and previous is not None and total != previous:
            reasons.append(f"total went from {previous} to {total} between pages")
        span = (page.first_date, page.last_date)
        if self._pages and self._range is not None and span != self._range and None not in span:
            reasons.append(
                f"first_date/last_date went from {_span(self._range)} to {_span(span)} "
                "between pages"
            )
        if page.has_next and page.size < self._limit:
            reasons.append(f"a page of {page.size} rows (limit {self._limit}) before the end")
        started = self._started
        if after_first_request and started is not None:
            later = [
                r.last_update for r in page.records if r.last_update and r.last_update > started
            ]
            if later:
                reasons.append(
                    f"{len(later)} rows changed after the load began (last_update up to "
                    f"{max(later)}, Powens' clock at the first page {started})"
                )
        if page.total is not None:
            self._total = page.total
        if None not in span:
            self._range = span
        self._pages += 1
        return reasons


def _span(span: tuple[date | None, date | None]) -> str:
    return f"{span[0]}..{span[1]}"


@dataclass(frozen=True, slots=True)
class ListingSignature:
    """The load's first page: what Powens announced and which row versions it served."""

    total: int | None
    first_date: date | None
    last_date: date | None
    rows: tuple[tuple[int | str | None, datetime | None], ...]

    @classmethod
    def of(cls, page: TransactionPage | None) -> ListingSignature:
        if page is None:  # no page at all (`noAccount`): an empty listing
            return cls(0, None, None, ())
        rows = tuple((r.id, r.last_update) for r in page.records) + tuple(
            (r.external_id, r.last_update) for r in page.rejects
        )
        return cls(page.total, page.first_date, page.last_date, rows)

    def differences(self, later: ListingSignature) -> list[str]:
        """How `later` (the same page read after the last one) differs from this one."""
        reasons = []
        if self.total != later.total:
            reasons.append(f"first page read again: total {self.total} -> {later.total}")
        if (self.first_date, self.last_date) != (later.first_date, later.last_date):
            reasons.append("first page read again: first_date/last_date changed")
        if self.rows != later.rows:
            reasons.append("first page read again: its rows changed")
        return reasons
