"""Date windows of a transactions listing: Powens' `CalendarBound` and the window every listing
states explicitly.

- `min_date` / `max_date` are inclusive and accept `YYYY-MM-DD`, `YYYY-MM` or `YYYY` (facts §5:
  S2 "minimal (inclusive) date", S3 `CalendarBound`). A month or a year is read as the whole
  period: as a lower bound its first day, as an upper bound its last day, so `max_date=2025-02`
  keeps 28 February. The client always sends whole days, so no server has to interpret a partial
  bound (S3 does not say how it does).
- Without `min_date` the legacy API selects the last month only (facts §5, S2), and newer sources
  disagree (docs/powens-api.md §3.2): every listing therefore sends one. `EARLIEST_DATE` is the
  bound integrators send for "everything" (S8's first import uses `min_date=1900-01-01`); bank
  history never starts before it.
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Literal

# S8 (facts §5): the first import's `min_date`; earlier than any bank keeps.
EARLIEST_DATE = date(1900, 1, 1)
_BOUND = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
FORMS = "YYYY-MM-DD, YYYY-MM or YYYY"


class CalendarBoundError(ValueError):
    """A date bound Powens would not understand; `key` names the setting it came from."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def parse_calendar_bound(value: object, *, key: str, side: Literal["min", "max"]) -> date:
    """A `CalendarBound` as the inclusive day it stands for on that `side` of a window."""
    if isinstance(value, date):
        return value
    text = value.strip() if isinstance(value, str) else None
    match = _BOUND.match(text) if text else None
    if match is None:
        raise CalendarBoundError(
            key,
            f"{value!r} is not a Powens date bound ({FORMS}: facts §5, S3 `CalendarBound`)",
        )
    year, month, day = (int(part) if part else None for part in match.groups())
    try:
        if month is None:
            return date(year, 1, 1) if side == "min" else date(year, 12, 31)  # type: ignore[arg-type]
        if day is None:
            last = calendar.monthrange(year, month)[1]  # type: ignore[arg-type]
            return date(year, month, 1 if side == "min" else last)  # type: ignore[arg-type]
        return date(year, month, day)  # type: ignore[arg-type]
    except ValueError as exc:
        raise CalendarBoundError(key, f"{value!r} is not a real date ({exc})") from None


def parse_window(
    min_value: object | None, max_value: object | None, *, keys: tuple[str, str]
) -> tuple[date | None, date | None]:
    """Both bounds of a user's window (either may be absent), checked to be in order."""
    low = None if min_value is None else parse_calendar_bound(min_value, key=keys[0], side="min")
    high = None if max_value is None else parse_calendar_bound(max_value, key=keys[1], side="max")
    if low is not None and high is not None and low > high:
        raise CalendarBoundError(
            keys[0], f"{low.isoformat()} is after {keys[1]} {high.isoformat()}: the window is empty"
        )
    return low, high
