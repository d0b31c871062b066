"""Overview windows and the 180-day retention rule, in one place.

A period ends at its partition day (inclusive) and reaches back a week, a calendar month or a
quarter (month arithmetic clamps at month ends, so 2024-03-31 looks back to 2024-03-01 and a leap
day is handled by the calendar, not by day counts). An entry expires 180 days after its period
end. Days are Europe/Paris days (`today`): Powens dates transactions and balances there, and the
overview's day partitions and schedules use it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

Period = Literal["week", "month", "quarter"]
PERIODS: tuple[Period, ...] = ("week", "month", "quarter")
RETENTION_DAYS = 180
OVERVIEW_TIMEZONE = ZoneInfo("Europe/Paris")


def today(now: datetime | None = None) -> date:
    """The overview's today, the day in Europe/Paris at `now` (default: this moment). The
    machine's own date is another day for an hour or two each night (UTC here), which offered a
    partition one day past the retention and dated the snapshot day wrong."""
    return (now or datetime.now(UTC)).astimezone(OVERVIEW_TIMEZONE).date()


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
