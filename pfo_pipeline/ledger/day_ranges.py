"""Stretches of days around the days a load changed: what an incremental derivation re-reads."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

# The whole history as a [start, stop) range of days.
WHOLE_HISTORY = (date.min, date.max)


def shift(day: date, by: timedelta) -> date:
    """`day + by`, held within the dates Python can name (the ends of `WHOLE_HISTORY`)."""
    if by < timedelta(0) and day - date.min <= -by:
        return date.min
    if by > timedelta(0) and date.max - day <= by:
        return date.max
    return day + by


def around(days: Iterable[date], before: timedelta, after: timedelta) -> list[tuple[date, date]]:
    """Merged, ascending [start, stop) ranges holding every day from `before` ahead of one of
    `days` to `after` past it."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        start, stop = shift(day, -before), shift(day, after + timedelta(days=1))
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(stop, ranges[-1][1]))
        else:
            ranges.append((start, stop))
    return ranges


def inside(start: date, stop: date, margin: timedelta) -> tuple[date, date]:
    """[start, stop) less `margin` at both ends (possibly empty: start >= stop)."""
    return shift(start, margin), shift(stop, -margin)
