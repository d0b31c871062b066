"""The incremental cursor a transactions load may commit: a pure function of what the load saw.

Powens filters an incremental listing on `last_update` ("updated after", facts §6, S3) and stamps
each change with it, but not always with the moment the change became visible: an import that
commits at its end stamps its rows with the time it read them, hours earlier (issue 25). So a
change can become visible while a load pages through the listing and still carry a `last_update`
older than rows the load did read. No timestamp rule can then place the cursor safely past it;
what the load can see is that the listing shifted under it:

- a row served twice (offsets moved: something entered or moved above the read position),
- `total` or the announced `first_date`/`last_date` changing between pages of one chain,
- a page shorter than the listing implies (a full page was due, the chain went on),
- a row served after the first request with a `last_update` later than Powens' clock at the
  load's first page (it changed during the load),
- the listing's first page read again after the last one differing from the first read.

The rule (`next_cursor`):

0. **A date-windowed load** (a backfill) read part of the history: changes outside its window
   are not in it, so it never moves the cursor forward.
1. **The listing shifted** (`LoadSeen.shifted`): the cursor stays where the load began
   (`cursor_before`; none for a first load, so the next one reads everything again). The next
   load re-reads the same range, whatever stamps the changes carry, as long as they are no older
   than that cursor minus the overlap; upserts are idempotent, so the ledger converges. We hold
   rather than re-read within the load: a re-read doubles the largest reads (a first sync of a
   million rows) to save one later incremental read, and under steady churn it would have to
   stop somewhere anyway.
2. **The listing was stable**: the largest `last_update` read, but never past Powens' clock at
   the first page minus one second (timestamps have whole seconds; `last_update=` means
   strictly after), so an in-place change made after its row was read, honestly stamped, is read
   by the next load. Never backwards.
3. **Rows to read again** (held back: an account the ledger does not know yet, a null `value`):
   the cursor goes at least one second before the oldest of their `last_update`s; when one has
   none, no cursor at all (the next load reads everything).

What no client can see: a change made in place to a row already read, during the load or after
it, stamped earlier than the cursor minus the overlap. Only the overlap (`overlap_minutes`)
covers it; docs/powens-api.md §9 says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Powens' timestamps have whole seconds (facts §4), and `last_update=` means strictly after.
ONE_TICK = timedelta(seconds=1)
# Reasons kept per load for its record (the first few say enough).
MAX_REASONS = 5


@dataclass(frozen=True, slots=True)
class LoadSeen:
    """What one load saw that bears on its cursor."""

    cursor_before: datetime | None
    newest_last_update: datetime | None
    powens_clock_at_start: datetime | None
    shifted: bool
    refetch_before: datetime | None = None  # the oldest `last_update` of rows to read again
    refetch_undated: bool = False  # one of those rows had no `last_update`
    windowed: bool = False  # the load read a date window, not every change


def next_cursor(seen: LoadSeen) -> datetime | None:
    """The cursor a load may commit (the module docstring gives the rule and why)."""
    if seen.shifted or seen.windowed:
        candidate = seen.cursor_before
    else:
        candidate = seen.newest_last_update
        clock = seen.powens_clock_at_start
        if candidate is not None and clock is not None:
            candidate = min(candidate, clock - ONE_TICK)
        before = seen.cursor_before
        if before is not None and (candidate is None or candidate < before):
            candidate = before
    if seen.refetch_undated:
        return None
    if seen.refetch_before is not None and candidate is not None:
        candidate = min(candidate, seen.refetch_before - ONE_TICK)
    return candidate


@dataclass
class CursorEvidence:
    """`LoadSeen` gathered batch by batch while a load reads Powens."""

    newest_last_update: datetime | None = None
    powens_clock_at_start: datetime | None = None
    clock_noted: bool = False
    shift_reasons: list[str] = field(default_factory=list)
    shifts: int = 0
    refetch_before: datetime | None = None
    refetch_undated: bool = False
    refetch_rows: int = 0
    windowed: bool = False

    def note_clock(self, clock: datetime | None) -> None:
        """Powens' clock at the load's first page (only the first call counts)."""
        if not self.clock_noted:
            self.powens_clock_at_start = clock
            self.clock_noted = True

    def note_last_update(self, value: datetime | None) -> None:
        if value is not None and (
            self.newest_last_update is None or value > self.newest_last_update
        ):
            self.newest_last_update = value

    def note_shift(self, reason: str) -> None:
        self.shifts += 1
        if len(self.shift_reasons) < MAX_REASONS:
            self.shift_reasons.append(reason)

    def note_refetch(self, last_updates: list[datetime | None]) -> None:
        """Rows that must be read again: the cursor stays before the oldest of them."""
        self.refetch_rows += len(last_updates)
        for value in last_updates:
            if value is None:
                self.refetch_undated = True
            elif self.refetch_before is None or value < self.refetch_before:
                self.refetch_before = value

    def seen(self, cursor_before: datetime | None) -> LoadSeen:
        return LoadSeen(
            cursor_before=cursor_before,
            newest_last_update=self.newest_last_update,
            powens_clock_at_start=self.powens_clock_at_start,
            shifted=self.shifts > 0,
            refetch_before=self.refetch_before,
            refetch_undated=self.refetch_undated,
            windowed=self.windowed,
        )
