"""`pfo sql --as-of`: a moment in time, read in Europe/Paris unless it carries an offset.

Like the rest of the product (schedules, overview days, Powens' own clock) a time without a zone is
Paris time; `2026-11-27 08:00+01:00` or `2026-11-27T07:00Z` say their own. A moment before the
lake's oldest snapshot is answered with where the lake starts, not with DuckLake's attach error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import duckdb

from pfo_pipeline.lake.transactions import LAKE

DEFAULT_ZONE = ZoneInfo("Europe/Paris")
FORMATS_HINT = (
    '"2026-11-27 08:00" (Europe/Paris), "2026-11-27 08:00+01:00", "2026-11-27T07:00Z" or '
    '"2026-11-27" (midnight, Paris)'
)


class AsOfError(ValueError):
    """An `--as-of` the lake cannot answer, saying why and what would work."""


def parse_as_of(text: str) -> datetime:
    """The moment `text` names, as an aware datetime (naive input is Europe/Paris)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AsOfError(f"{text!r} is not a time: write {FORMATS_HINT}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=DEFAULT_ZONE)
    return moment


def describe(moment: datetime) -> str:
    """`2026-11-27 08:00:00 Europe/Paris (07:00:00 UTC)`: the product's zone first, UTC beside."""
    paris = moment.astimezone(DEFAULT_ZONE)
    return (
        f"{paris:%Y-%m-%d %H:%M:%S} Europe/Paris ({paris:%z}, "
        f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)"
    )


def lake_start(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The time of the lake's oldest snapshot still kept (older ones expire with maintenance)."""
    first = conn.execute(f"SELECT min(snapshot_time) FROM {LAKE}.snapshots()").fetchall()[0][0]
    return first.astimezone(UTC) if first is not None else None


def check_in_range(moment: datetime, start: datetime | None) -> None:
    """AsOfError when the lake has no snapshot at or before `moment`."""
    if start is None:
        raise AsOfError("the lake has no snapshot yet: run a sync first")
    if moment < start:
        raise AsOfError(
            f"{describe(moment)} is before the lake's first snapshot: the lake starts at "
            f"{describe(start)} (snapshots older than the time-travel window are expired by "
            "`pfo ledger maintain`)"
        )


def snapshot_time_literal(moment: datetime) -> str:
    """The moment as DuckLake's SNAPSHOT_TIME reads it: ISO 8601 in UTC with its offset, so the
    session's TimeZone setting plays no part."""
    return moment.astimezone(UTC).isoformat()
