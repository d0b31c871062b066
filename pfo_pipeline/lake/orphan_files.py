"""Files in the lake's data path that no snapshot references, and which of them may go.

A commit killed after writing its Parquet files but before committing leaves them behind (up to
64 MB each, full rows). DuckLake lists them (`ducklake_delete_orphaned_files`, by the files'
modification time); this module decides which are safe to delete now instead of after the
30-day time-travel window:

- not a file a writer may still commit: older than `ORPHAN_GRACE` (a commit writes its files in
  minutes at most) and older than the start of any load still running (a load running for more
  than `RUNNING_LOAD_HORIZON` is taken for dead: its process ended without marking it);
- not a file of an earlier lake: files older than this catalog's creation (its first migration)
  are not this catalog's orphans but another catalog's data (a catalog restored or recreated
  over them); they are kept and counted unless `delete_unknown` says otherwise.

The same rules hold on a local folder and in an S3 bucket (`lake_files`: a file's age is its
modification time, an object's its Last-Modified).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from pfo_pipeline.lake.lake_files import LakeFiles
from pfo_pipeline.lake.transactions import LAKE

ORPHAN_GRACE = timedelta(hours=1)
RUNNING_LOAD_HORIZON = timedelta(hours=24)

logger = logging.getLogger("pfo_pipeline.lake")


@dataclass(frozen=True)
class OrphanReport:
    deleted: int
    kept_unknown: int  # older than the catalog: an earlier lake's files


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def safe_cutoff(conn: duckdb.DuckDBPyConnection, now: datetime, grace: timedelta) -> datetime:
    """Files modified before this may be orphans of dead writers, not of live ones."""
    cutoff = now - grace
    started = conn.execute(
        "SELECT min(started_at) FROM ledger.loads WHERE status = 'running' AND started_at > ?",
        [now - RUNNING_LOAD_HORIZON],
    ).fetchall()[0][0]
    if started is not None:
        cutoff = min(cutoff, _as_utc(started) - timedelta(minutes=1))
    return cutoff


def catalog_created_at(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """When this catalog was made: its first migration (snapshots expire, migrations stay)."""
    value = conn.execute(
        "SELECT min(applied_at) FROM ledger.schema_migrations WHERE version = 1"
    ).fetchall()[0][0]
    return _as_utc(value) if value is not None else None


def delete_orphan_files(
    conn: duckdb.DuckDBPyConnection,
    *,
    now: datetime | None = None,
    grace: timedelta = ORPHAN_GRACE,
    delete_unknown: bool = False,
) -> OrphanReport:
    now = now or datetime.now(UTC)
    cutoff = safe_cutoff(conn, now, grace)
    if delete_unknown:
        deleted = conn.execute(
            f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => ?)", [cutoff]
        ).fetchall()
        return OrphanReport(len(deleted), 0)
    listed = [
        path
        for (path,) in conn.execute(
            f"CALL ducklake_delete_orphaned_files('{LAKE}', dry_run => true, older_than => ?)",
            [cutoff],
        ).fetchall()
    ]
    if not listed:
        return OrphanReport(0, 0)
    files = LakeFiles(listed[0])  # any of them tells a local folder from a bucket
    created = catalog_created_at(conn)
    deleted = kept = 0
    for path, info in files.infos(listed).items():
        if created is None or info.modified < created - timedelta(seconds=1):
            kept += 1
            continue
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile: another maintenance
            files.delete(path)
        deleted += 1
    if kept:
        logger.warning(
            "Kept %d file(s) in the lake's data path that are older than its catalog (%s): an "
            "earlier lake's data, not orphans of this one; `pfo ledger maintain "
            "--delete-unknown-files` deletes them",
            kept,
            created,
        )
    return OrphanReport(deleted, kept)
