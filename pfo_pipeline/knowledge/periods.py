"""Overview windows and the 180-day retention rule, in one place.

A period ends at its partition day (inclusive) and reaches back a week, a calendar month or a
quarter (month arithmetic clamps at month ends, so 2024-03-31 looks back to 2024-03-01 and a leap
day is handled by the calendar, not by day counts). An entry expires 180 days after its period end.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from dateutil.relativedelta import relativedelta

Period = Literal["week", "month", "quarter"]
PERIODS: tuple[Period, ...] = ("week", "month", "quarter")
RETENTION_DAYS = 180


def period_window(period: Period, as_of: date) -> tuple[date, date]:
    if period == "week":
        return as_of - timedelta(days=6), as_of
    months = {"month": 1, "quarter": 3}.get(period)
    if months is None:
        raise ValueError(f"period: must be one of {PERIODS}, got {period!r}")
    return as_of - relativedelta(months=months) + timedelta(days=1), as_of


def expires_at(period_end: date) -> date:
    return period_end + timedelta(days=RETENTION_DAYS)


def is_within_retention(day: date, today: date) -> bool:
    """Day 180 back is still kept; day 181 back is gone."""
    return (today - day).days <= RETENTION_DAYS
