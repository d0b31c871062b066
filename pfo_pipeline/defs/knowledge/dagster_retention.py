"""Retention inside Dagster's own storage: the overview's Markdown and chart are copied into each
materialisation's metadata (so the UI shows them), so an expired partition's runs are deleted
through Dagster's API (`DagsterInstance.delete_run`, which drops their event logs with that
metadata). Dagster's per-partition wipe is not available in open-source event storage; deleting
the run is. A run that also materialised a partition still inside retention is kept.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import dagster as dg

from pfo_pipeline.knowledge.periods import is_within_retention

OVERVIEW = dg.AssetKey("financial_overview")
PAGE = 500


def _day_of(partition_key: str | None) -> date | None:
    """The day dimension of a tenant x day key (`2026-05-01|tenant.x`: dimensions by name)."""
    if not partition_key:
        return None
    for part in partition_key.split("|"):
        try:
            return date.fromisoformat(part)
        except ValueError:
            continue
    return None


def expired_overview_runs(instance: dg.DagsterInstance, today: date) -> list[str]:
    """Runs whose every overview materialisation is of a day past the retention."""
    fresh_by_run: dict[str, bool] = defaultdict(bool)
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=OVERVIEW), limit=PAGE, cursor=cursor
        )
        for record in result.records:
            day = _day_of(record.partition_key)
            fresh = day is None or is_within_retention(day, today)
            fresh_by_run[record.run_id] = fresh_by_run[record.run_id] or fresh
        if not result.has_more:
            break
        cursor = result.cursor
    return sorted(run_id for run_id, fresh in fresh_by_run.items() if not fresh)


def forget_expired_overview_runs(
    instance: dg.DagsterInstance, today: date, current_run_id: str | None = None
) -> list[str]:
    """Delete the expired runs (never the run doing the sweep); the ids deleted."""
    deleted = []
    for run_id in expired_overview_runs(instance, today):
        if run_id != current_run_id:
            instance.delete_run(run_id)
            deleted.append(run_id)
    return deleted
