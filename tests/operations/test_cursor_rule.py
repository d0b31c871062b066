"""The cursor rule as a pure function of what a load saw (`ledger/cursor_rule.py`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pfo_pipeline.ledger.cursor_rule import ONE_TICK, CursorEvidence, LoadSeen, next_cursor

BEFORE = datetime(2026, 5, 28, 8, 0, 0)
CLOCK = datetime(2026, 5, 29, 8, 0, 0)  # Powens' clock at the load's first page


def seen(**changes: object) -> LoadSeen:
    base = {
        "cursor_before": BEFORE,
        "newest_last_update": CLOCK - timedelta(minutes=5),
        "powens_clock_at_start": CLOCK,
        "shifted": False,
    }
    return LoadSeen(**{**base, **changes})  # type: ignore[arg-type]


def test_a_stable_listing_moves_the_cursor_to_the_newest_change_read() -> None:
    assert next_cursor(seen()) == CLOCK - timedelta(minutes=5)


def test_never_past_powens_clock_at_the_first_page() -> None:
    """A row changed in place after it was read, honestly stamped, must be read next time:
    `last_update=` is strictly after, timestamps have whole seconds, so one second before."""
    assert next_cursor(seen(newest_last_update=CLOCK + timedelta(hours=1))) == CLOCK - ONE_TICK


def test_never_backwards_when_stable() -> None:
    assert next_cursor(seen(newest_last_update=BEFORE - timedelta(days=1))) == BEFORE
    assert next_cursor(seen(newest_last_update=None)) == BEFORE
    assert next_cursor(seen(cursor_before=None, newest_last_update=None)) is None


@pytest.mark.parametrize("before", [BEFORE, None])
def test_a_shifted_listing_keeps_the_cursor_where_the_load_began(before) -> None:
    """Whatever the stamps of what moved (hours before the load), the next load re-reads all."""
    assert next_cursor(seen(cursor_before=before, shifted=True)) == before


def test_a_windowed_load_never_moves_the_cursor_forward() -> None:
    """A backfill of 2024 says nothing of changes to 2025's rows."""
    assert next_cursor(seen(windowed=True)) == BEFORE
    assert next_cursor(seen(windowed=True, cursor_before=None)) is None


def test_rows_to_read_again_keep_the_cursor_strictly_before_them() -> None:
    held = BEFORE + timedelta(hours=2)
    assert next_cursor(seen(refetch_before=held)) == held - ONE_TICK
    older = BEFORE - timedelta(days=3)  # came in through the overlap: the cursor goes back
    assert next_cursor(seen(refetch_before=older)) == older - ONE_TICK
    assert next_cursor(seen(refetch_undated=True)) is None  # no date: read everything again


@given(
    newest=st.none() | st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)),
    before=st.none() | st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)),
    clock=st.none() | st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)),
    shifted=st.booleans(),
    held=st.none() | st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)),
)
def test_the_cursor_never_passes_what_it_must_not(newest, before, clock, shifted, held) -> None:
    cursor = next_cursor(
        LoadSeen(before, newest, clock, shifted, refetch_before=held, refetch_undated=False)
    )
    if held is not None:
        assert cursor is None or cursor < held
    if shifted:
        assert cursor == before or (held is not None and cursor is not None and cursor < held)
    elif clock is not None and cursor is not None and (before is None or cursor > before):
        assert cursor < clock


def test_evidence_gathers_what_the_batches_said() -> None:
    evidence = CursorEvidence()
    evidence.note_clock(CLOCK)
    evidence.note_clock(CLOCK + timedelta(hours=1))  # only the load's first page counts
    evidence.note_last_update(CLOCK - timedelta(hours=2))
    evidence.note_last_update(None)
    evidence.note_refetch([CLOCK - timedelta(hours=3), CLOCK - timedelta(hours=1)])
    for n in range(8):
        evidence.note_shift(f"reason {n}")
    result = evidence.seen(BEFORE)
    assert result.powens_clock_at_start == CLOCK and result.shifted
    assert result.newest_last_update == CLOCK - timedelta(hours=2)
    assert result.refetch_before == CLOCK - timedelta(hours=3)
    assert evidence.shifts == 8 and len(evidence.shift_reasons) == 5  # the first few kept
