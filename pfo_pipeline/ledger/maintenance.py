"""Lake upkeep: flush settled inlined rows, compact small files, expire old snapshots, delete files that
nothing references. Time travel reaches back `window_days` (default 30); the knowledge space's
180-day retention is a separate rule on its own rows and is not touched here. Orphan files of
killed commits go as soon as no writer can still commit them (`orphan_files`), not after the
window; files older than the catalog are kept unless `delete_unknown_files`."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pfo_pipeline.ledger.inlined_flush import flush_settled_inlined_rows
from pfo_pipeline.ledger.knowledge_history import scrub_text_statistics
from pfo_pipeline.ledger.lake import LAKE, run_transaction
from pfo_pipeline.ledger.orphan_files import delete_orphan_files

DEFAULT_TIME_TRAVEL_DAYS = 30


@dataclass(frozen=True)
class MaintenanceReport:
    data_files_before: int
    data_files_after: int
    snapshots_before: int
    snapshots_after: int
    orphan_files_deleted: int = 0
    unknown_files_kept: int = 0

    def as_metadata(self) -> dict[str, int]:
        return dict(self.__dict__)


def _counts(conn: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(live data files, snapshots) of the lake."""
    files = conn.execute(
        f"SELECT count(*) FROM __ducklake_metadata_{LAKE}.ducklake_data_file WHERE end_snapshot IS NULL"
    ).fetchall()[0][0]
    snapshots = conn.execute(f"SELECT count(*) FROM {LAKE}.snapshots()").fetchall()[0][0]
    return files, snapshots


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
    flush_settled_inlined_rows(conn, window_days)  # only what time travel can no longer tell
    for statement in (
        f"CALL ducklake_merge_adjacent_files('{LAKE}')",
        f"CALL ducklake_expire_snapshots('{LAKE}', older_than => {older})",
        f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => {older})",
    ):
        run_transaction(
            conn, lambda sql=statement: conn.execute(sql).fetchall(), what="lake maintenance"
        )
    orphans = delete_orphan_files(conn, delete_unknown=delete_unknown_files)
    scrub_text_statistics(conn)  # merged files come with fresh min/max of the overview's text
    files_after, snapshots_after = _counts(conn)
    return MaintenanceReport(
        files_before,
        files_after,
        snapshots_before,
        snapshots_after,
        orphans.deleted,
        orphans.kept_unknown,
    )
