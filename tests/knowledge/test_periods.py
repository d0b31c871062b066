"""The overview's days are Europe/Paris days, whatever the machine's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pfo_pipeline.defs.partitions import retention_start
from pfo_pipeline.knowledge.periods import today


@pytest.mark.parametrize(
    ("utc", "paris_day"),
    [
        (datetime(2026, 12, 31, 23, 10, tzinfo=UTC), date(2027, 1, 1)),  # winter, UTC+1
        (datetime(2026, 12, 31, 22, 59, tzinfo=UTC), date(2026, 12, 31)),
        (datetime(2026, 7, 1, 22, 0, tzinfo=UTC), date(2026, 7, 2)),  # summer, UTC+2
        (datetime(2026, 7, 1, 21, 59, tzinfo=UTC), date(2026, 7, 1)),
    ],
)
def test_today_is_the_day_in_paris(utc: datetime, paris_day: date) -> None:
    assert today(utc) == paris_day


def test_the_retention_starts_180_days_before_the_overviews_today() -> None:
    assert retention_start(date(2027, 1, 1)) == date(2026, 7, 5)
    assert retention_start() == retention_start(today())
