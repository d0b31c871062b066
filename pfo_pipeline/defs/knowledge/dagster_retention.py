"""Retention inside Dagster's own storage: the overview's Markdown and chart are copied into each
materialisation's metadata (so the UI shows them), so an expired partition's runs are deleted
through Dagster's API (`DagsterInstance.delete_run`, which drops their event logs with that
metadata) with their captured stdout/stderr. Dagster's per-partition wipe is not available in
open-source event storage; deleting the run is. A run that also materialised a partition still
inside retention is kept.

Deleting a run leaves one copy behind: the asset's index row (`asset_keys.last_materialization`,
what the UI's asset page shows first) keeps the whole event of the last materialisation, preview
and chart included. When that event was a deleted run's, the row is pointed at the newest
materialisation left (or emptied when none is), as Dagster itself writes it.
"""

from __future__ import annotations

import contextlib
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
            with contextlib.suppress(Exception):  # a manager without captured logs
                instance.compute_log_manager.delete_logs(prefix=[run_id])
            deleted.append(run_id)
    if deleted:
        replace_last_materialization(instance, set(deleted))
    return deleted


def replace_last_materialization(instance: dg.DagsterInstance, deleted_runs: set[str]) -> bool:
    """Point the overview's index row away from a deleted run's event; whether it changed."""
    # Dagster's storage internals (SQLAlchemy, the event-log schema) cost 0.3-0.7 s to import:
    # imported when a retention run needs them, not when the code location loads.
    from dagster._core.storage.event_log.base import EventLogRecord
    from dagster._core.storage.event_log.schema import AssetKeyTable
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from dagster_shared.serdes import serialize_value

    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        return False
    key = OVERVIEW.to_string()
    with storage.index_connection() as conn:
        row = conn.execute(
            AssetKeyTable.select().where(AssetKeyTable.c.asset_key == key)
        ).fetchone()
    if row is None or row._mapping["last_run_id"] not in deleted_runs:
        return False
    newest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=OVERVIEW), limit=1, ascending=False
    ).records
    values: dict[str, object] = {"last_materialization": None, "last_run_id": None}
    if newest:
        record = newest[0]
        values = {
            "last_materialization": serialize_value(
                EventLogRecord(storage_id=record.storage_id, event_log_entry=record.event_log_entry)
            ),
            "last_run_id": record.run_id,
        }
    if storage.can_read_asset_status_cache():
        values["cached_status_data"] = None  # rebuilt from the events that are left
    with storage.index_connection() as conn:
        conn.execute(
            AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == key)
        )
    return True
