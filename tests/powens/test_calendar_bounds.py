"""Powens' `CalendarBound` (S3) as the inclusive day it stands for, in the client and the emulator
alike; a bad bound is an error naming its key."""

from __future__ import annotations

from datetime import date

import pytest

from pfo_pipeline.powens.calendar_bounds import (
    CalendarBoundError,
    parse_calendar_bound,
    parse_window,
)
from powens_emulator.clock import day_number, parse_day

FORMS = [
    ("2024-02-10", date(2024, 2, 10), date(2024, 2, 10)),
    ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),  # a leap February ends on the 29th
    ("2023-02", date(2023, 2, 1), date(2023, 2, 28)),
    ("2024-12", date(2024, 12, 1), date(2024, 12, 31)),
    ("2024", date(2024, 1, 1), date(2024, 12, 31)),
]


@pytest.mark.parametrize("text, low, high", FORMS)
def test_a_month_or_a_year_is_the_whole_period(text: str, low: date, high: date) -> None:
    assert parse_calendar_bound(text, key="min_date", side="min") == low
    assert parse_calendar_bound(text, key="max_date", side="max") == high
    # The emulator reads a bound the same way (its own code: it stands for Powens).
    assert parse_day(text, "min") == day_number(low)
    assert parse_day(text, "max") == day_number(high)


@pytest.mark.parametrize("text", ["2024-13", "24-01-01", "2024/01/01", "", "2024-02-30", "soon"])
def test_a_bad_bound_names_its_key_and_the_forms(text: str) -> None:
    with pytest.raises(CalendarBoundError) as info:
        parse_calendar_bound(text, key="max_date", side="max")
    assert info.value.key == "max_date" and str(info.value).startswith("max_date: ")


def test_a_window_must_not_be_empty() -> None:
    assert parse_window("2024", "2024-03", keys=("min_date", "max_date")) == (
        date(2024, 1, 1),
        date(2024, 3, 31),
    )
    assert parse_window(None, None, keys=("min_date", "max_date")) == (None, None)
    with pytest.raises(CalendarBoundError, match="min_date: 2025-01-01 is after max_date"):
        parse_window("2025", "2024-12", keys=("min_date", "max_date"))
