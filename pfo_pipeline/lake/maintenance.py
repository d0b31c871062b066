"""Lake upkeep: flush settled inlined rows, compact small files, expire old snapshots, delete files
that nothing references. Time travel reaches back `window_days` (default 30); the knowledge space's
180-day retention is a separate rule on its own rows and is not touched here. Orphan files of
killed commits go as soon as no writer can still commit them (`orphan_files`), not after the
window; files older than the catalog are kept unless `delete_unknown_files`."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pfo_pipeline.lake.forget import scrub_text_statistics
from pfo_pipeline.lake.inlined_flush import flush_settled_inlined_rows
from pfo_pipeline.lake.orphan_files import delete_orphan_files
from pfo_pipeline.lake.transactions import LAKE, run_transaction

DEFAULT_TIME_TRAVEL_DAYS = 30


@dataclass(frozen=True)
class MaintenanceReport:
    """What one pass did, every number read from DuckLake (its catalog, or what its calls
    returned), none inferred."""

    data_files_before: int
    data_files_after: int
    snapshots_before: int
    snapshots_after: int
    inlined_rows_flushed: int = 0  # rows moved from the catalog's inlined tables to Parquet
    files_merged: int = 0  # small files the merge replaced...
    merged_into: int = 0  # ...by this many files
    snapshots_expired: int = 0
    files_deleted: int = 0  # files removed from storage (expired, replaced or orphaned)
    orphan_files_deleted: int = 0  # of which files of killed commits
    unknown_files_kept: int = 0  # files older than the catalog: an earlier lake's, kept

    def as_metadata(self) -> dict[str, int]:
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        """What was done, one line per kind of work (what `pfo ledger maintain` prints)."""
        return [
            f"flushed {self.inlined_rows_flushed:,} inlined rows from the catalog to Parquet",
            f"merged {self.files_merged:,} small files into {self.merged_into:,}",
            f"expired {self.snapshots_expired:,} snapshots",
            f"deleted {self.files_deleted:,} files ({self.orphan_files_deleted:,} of killed "
            f"commits); kept {self.unknown_files_kept:,} files older than the catalog",
            f"data files {self.data_files_before:,} -> {self.data_files_after:,}, "
            f"snapshots {self.snapshots_before:,} -> {self.snapshots_after:,}",
        ]

    def summary(self) -> str:
        return "; ".join(self.lines())


def _metadata(table: str) -> str:
    return f"__ducklake_metadata_{LAKE}.{table}"


def _counts(conn: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(live data files, snapshots) of the lake."""
    files = conn.execute(
        f"SELECT count(*) FROM {_metadata('ducklake_data_file')} WHERE end_snapshot IS NULL"
    ).fetchall()[0][0]
    snapshots = conn.execute(f"SELECT count(*) FROM {LAKE}.snapshots()").fetchall()[0][0]
    return files, snapshots


def _inlined_rows(conn: duckdb.DuckDBPyConnection) -> int:
    """Live rows held in the catalog's inlined-data tables (of tables that still exist)."""
    tables = conn.execute(
        f"SELECT i.table_name FROM {_metadata('ducklake_inlined_data_tables')} i "
        f"JOIN {_metadata('ducklake_table')} t USING (table_id) WHERE t.end_snapshot IS NULL"
    ).fetchall()
    return sum(
        conn.execute(
            f"SELECT count(*) FROM {_metadata(f'{name}')} WHERE end_snapshot IS NULL"
        ).fetchall()[0][0]
        for (name,) in tables
    )


def _scheduled_for_deletion(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute(
        f"SELECT count(*) FROM {_metadata('ducklake_files_scheduled_for_deletion')}"
    ).fetchall()[0][0]


def _call(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """One maintenance call, its own commit (retried on a conflict); the rows it returned."""
    return run_transaction(conn, lambda: conn.execute(sql).fetchall(), what="lake maintenance")


def maintain(
    conn: duckdb.DuckDBPyConnection,
    *,
    window_days: int = DEFAULT_TIME_TRAVEL_DAYS,
    delete_unknown_files: bool = False,
) -> MaintenanceReport:
    """One pass; safe to run while syncs and analysts use the lake (each call is its own
    commit, retried on a conflict)."""
    if window_days < 0:
        raise ValueError(f"window_days: must be >= 0, got {window_days}")
    files_before, snapshots_before = _counts(conn)
    older = f"now() - INTERVAL {int(window_days)} DAY"

    # Only rows whose history time travel can no longer tell (`inlined_flush` says why).
    inlined_before = _inlined_rows(conn)
    flush_settled_inlined_rows(conn, window_days)
    flushed = max(0, inlined_before - _inlined_rows(conn))

    # The merge returns nothing: the files it replaced are the ones it scheduled for deletion.
    files_pre_merge, scheduled_pre_merge = _counts(conn)[0], _scheduled_for_deletion(conn)
    _call(conn, f"CALL ducklake_merge_adjacent_files('{LAKE}')")
    merged = max(0, _scheduled_for_deletion(conn) - scheduled_pre_merge)
    merged_into = max(0, _counts(conn)[0] - files_pre_merge + merged)

    expired = _call(conn, f"CALL ducklake_expire_snapshots('{LAKE}', older_than => {older})")
    deleted = _call(conn, f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => {older})")
    orphans = delete_orphan_files(conn, delete_unknown=delete_unknown_files)
    scrub_text_statistics(conn)  # merged files come with fresh min/max of the overview's text
    files_after, snapshots_after = _counts(conn)
    return MaintenanceReport(
        files_before,
        files_after,
        snapshots_before,
        snapshots_after,
        inlined_rows_flushed=flushed,
        files_merged=merged,
        merged_into=merged_into if merged else 0,
        snapshots_expired=len(expired),
        files_deleted=len(deleted) + orphans.deleted,
        orphan_files_deleted=orphans.deleted,
        unknown_files_kept=orphans.kept_unknown,
    )
