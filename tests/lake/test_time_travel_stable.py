"""Time travel is stable: within the window, a query as of any snapshot answers the same before
and after maintenance (compaction, expiry, orphan clean-up, the flush of rows a lake inlined in
its catalog before migration 8), including the rows that were updated or deleted since."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pfo_pipeline import lake
from pfo_pipeline.knowledge.store import OverviewEntry, replace_overview_entry
from pfo_pipeline.lake import attach
from pfo_pipeline.lake.maintenance import maintain

# `{at}`: DuckLake's time travel clause, `AT (VERSION => n)` (as `pfo sql --as-of` reads).
QUERIES = (
    "SELECT entry_id, period_end, markdown FROM knowledge.financial_overview {at} ORDER BY ALL",
    "SELECT chunk_id, content FROM knowledge.financial_overview_chunks {at} ORDER BY ALL",
    "SELECT tenant_id, load_id FROM ledger.sync_cursors {at} ORDER BY ALL",
)


def entry(number: int, end: date, text: str) -> OverviewEntry:
    return OverviewEntry(
        f"entry-{number}", "tenant.a", "week", end - timedelta(days=6), end,
        datetime(2026, 5, 1, tzinfo=UTC), end + timedelta(days=180), f"hash-{text}",
        f"# Week to {end}: {text}", f'{{"n": {number}}}',
    )  # fmt: skip


def history(location: lake.LakeLocation) -> dict[int, list[list[tuple]]]:
    """Every query's answer as of every snapshot since the tables exist."""
    conn = lake.connect(location, read_only=True, shared=False)
    try:
        first = conn.execute(
            "SELECT min(snapshot_id) FROM lake.snapshots() WHERE changes['tables_created'] "
            "IS NOT NULL AND list_contains(changes['tables_created'], 'knowledge.financial_overview')"
        ).fetchall()[0][0]
        snapshots = conn.execute(
            "SELECT snapshot_id FROM lake.snapshots() WHERE snapshot_id >= ? ORDER BY 1",
            [first or 0],  # none: the tables' first snapshot has expired
        ).fetchall()
        return {
            s: [conn.execute(q.format(at=f"AT (VERSION => {s})")).fetchall() for q in QUERIES]
            for (s,) in snapshots
        }
    finally:
        conn.close()


def churn(conn) -> None:
    """The issue's case: overviews rewritten day after day (each replace deletes the entry and
    its chunks), cursors moved and deleted."""
    for day in range(4):
        end = date(2026, 5, 1) + timedelta(days=day)
        replace_overview_entry(conn, entry(day % 3, end, f"version {day}"), [(f"chunk {day}", 2)])
        conn.execute(
            "INSERT INTO ledger.sync_cursors VALUES (?, 'c', 'transactions', now()::TIMESTAMP, ?)",
            [f"tenant.{day}", f"load_{day}"],
        )
        if day % 2:
            conn.execute(
                "DELETE FROM ledger.sync_cursors WHERE tenant_id = ?", [f"tenant.{day - 1}"]
            )
            conn.execute("UPDATE ledger.sync_cursors SET load_id = load_id || '+' ")


def test_maintenance_changes_no_answer_within_the_window(tmp_path: Path) -> None:
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    conn = lake.connect(location, shared=False)
    try:
        churn(conn)
        before = history(location)
        report = maintain(conn, window_days=30)
    finally:
        conn.close()
    assert report.data_files_after < report.data_files_before  # it did compact
    after = history(location)
    assert {snapshot: after[snapshot] for snapshot in before} == before  # (+ maintenance's own)
    assert max(len(answers[0]) for answers in before.values()) == 3


def test_rows_inlined_before_migration_8_keep_their_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake that inlined small writes (as this project did before): maintenance leaves those
    rows where they are while their changes are inside the window (DuckLake's flush would drop
    the deleted rows' history), and flushes them once the window has passed them."""
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    monkeypatch.setattr(attach, "INLINING_ROW_LIMIT", 200)
    conn = lake.connect(location, shared=False)
    try:
        conn.execute("CALL lake.set_option('data_inlining_row_limit', 200)")
        churn(conn)
        inlined = conn.execute(
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_inlined_data_tables"
        ).fetchall()[0][0]
        assert inlined > 0  # the writes did stay in the catalog
        before = history(location)
        maintain(conn, window_days=30)
        kept = history(location)
        assert {s: kept[s] for s in before} == before  # nothing flushed: the changes are recent
        latest = max(before)
        maintain(conn, window_days=0)  # every change is now older than the window
        after = history(location)
    finally:
        conn.close()
    assert after[max(after)] == before[latest]  # what is left to read reads the same
