"""Time in the emulator: naive Europe/Paris wall-clock times, held as whole days and seconds.

Rows keep their dates as day numbers since 1970-01-01 and their timestamps as seconds since
1970-01-01 00:00:00 (of the naive wall clock, as Powens prints it); these helpers convert both ways.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

EPOCH = date(1970, 1, 1)
EPOCH_TIME = datetime(1970, 1, 1)
PARIS = ZoneInfo("Europe/Paris")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def day_number(value: date) -> int:
    """Days since 1970-01-01."""
    return (value - EPOCH).days


def seconds(value: datetime) -> int:
    """Seconds since 1970-01-01 00:00:00 of a naive wall-clock time."""
    return int((value - EPOCH_TIME).total_seconds())


@lru_cache(maxsize=1 << 17)
def fmt_ts(value: int) -> str:
    """`YYYY-MM-DD HH:MM:SS` of a seconds value."""
    return (EPOCH_TIME + timedelta(seconds=int(value))).strftime(TIMESTAMP_FORMAT)


@lru_cache(maxsize=1 << 15)
def fmt_day(days: int) -> str:
    """`YYYY-MM-DD` of a day number."""
    return (EPOCH + timedelta(days=int(days))).isoformat()


def fmt_now(value: datetime) -> str:
    return value.strftime(TIMESTAMP_FORMAT)


def parse_ts(value: str | None) -> int | None:
    """A `last_update` query value to seconds (None when absent); ValueError when malformed."""
    if not value:
        return None
    return seconds(datetime.strptime(value, TIMESTAMP_FORMAT))


def parse_day(value: str | None, side: str = "min") -> int | None:
    """A `min_date`/`max_date` value to a day number: S3's `CalendarBound` is a date, a month
    `YYYY-MM` or a year `YYYY`; a month or year stands for its first day as a lower bound and
    its last day as an upper one (inclusive bounds). ValueError when malformed."""
    if not value:
        return None
    if len(value) == 4 and value.isdigit():
        year = int(value)
        return day_number(date(year, 1, 1) if side == "min" else date(year, 12, 31))
    if len(value) == 7 and value[4] == "-":
        first = date.fromisoformat(value + "-01")
        if side == "min":
            return day_number(first)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return day_number(following) - 1
    if len(value) != 10:
        raise ValueError(f"{value!r} is not a date, a month or a year")
    return day_number(date.fromisoformat(value))


def http_date(paris_wall_clock: datetime) -> str:
    """An RFC 9110 `Date` value for a naive Europe/Paris time."""
    aware = paris_wall_clock.replace(tzinfo=PARIS)
    return format_datetime(aware.astimezone(UTC), usegmt=True)
