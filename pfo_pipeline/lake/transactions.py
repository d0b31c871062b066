"""Transactions on the lake: a write retried from a fresh snapshot on a commit conflict, a read of
one snapshot, Arrow tables visible to SQL for a block, and the snapshot a connection committed.

Why a lake: snapshot isolation lets analysts, dbt and any number of writers (other tenants, other
machines on a PostgreSQL catalog) work at once; a writer conflicts only at commit, and
`run_transaction` redoes its work from a fresh snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import duckdb

from pfo_pipeline.lake.errors import LakeCommitConflict

LAKE = "lake"
logger = logging.getLogger("pfo_pipeline.lake")
T = TypeVar("T")


@contextmanager
def registered(conn: duckdb.DuckDBPyConnection, **tables: object) -> Iterator[None]:
    """Arrow tables (or frames) visible to SQL under these names for the block, then gone: a
    retried transaction reads them again, and no batch outlives its statement."""
    for name, table in tables.items():
        conn.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            conn.unregister(name)


# Another writer committed first: DuckLake's conflict check, SQLite busy, PostgreSQL
# serialization, and two writers claiming the same next snapshot id on a PostgreSQL catalog.
_CONFLICT_MARKERS = (
    "conflict",
    "database is locked",
    "could not serialize",
    "deadlock",
    "duplicate key",
)


def is_commit_conflict(exc: BaseException) -> bool:
    """Another writer committed first (DuckLake conflict, SQLite busy, PostgreSQL serialization)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(marker in text for marker in _CONFLICT_MARKERS)


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed COMMIT already ended the transaction
        conn.execute("ROLLBACK")


def run_transaction(
    conn: duckdb.DuckDBPyConnection,
    work: Callable[[], T],
    *,
    what: str,
    attempts: int = 30,
    first_wait_s: float = 0.05,
    max_wait_s: float = 4.0,
) -> T:
    """Run `work` in one lake transaction; on a commit conflict, roll back and run it again
    from a fresh snapshot (so `work` must read what it writes inside). With a SQLite catalog
    every overlapping writer conflicts, so waits grow (with jitter) to `max_wait_s`; bounded:
    after `attempts` (about 1.5 minutes) a `LakeCommitConflict` says what could not commit."""
    for attempt in range(1, attempts + 1):
        conn.execute("BEGIN TRANSACTION")
        try:
            result = work()
            conn.execute("COMMIT")
            return result
        except BaseException as exc:
            _rollback(conn)
            if not is_commit_conflict(exc):
                raise
            if attempt == attempts:
                raise LakeCommitConflict(
                    f"{what}: gave up after {attempts} commit conflicts with other writers "
                    f"({str(exc).splitlines()[0][:200]}); nothing was committed, run it again"
                ) from None
            wait = min(max_wait_s, first_wait_s * 2 ** (attempt - 1)) * (0.5 + random.random())
            logger.info(
                "%s: commit conflict with another writer (attempt %d/%d); retrying in %.2fs",
                what,
                attempt,
                attempts,
                wait,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def one_snapshot(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Every read of the block sees the same snapshot of the lake (a read transaction, rolled
    back at the end): a check comparing two reads never sees another writer commit between
    them, and the lake's latest snapshot is looked up in the catalog once, not per statement."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    finally:
        _rollback(conn)


def last_snapshot(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The snapshot this connection committed last (None before its first commit)."""
    row = conn.execute(f"SELECT * FROM ducklake_last_committed_snapshot('{LAKE}')").fetchall()
    return row[0][0] if row and row[0][0] is not None else None


@contextmanager
def one_thread(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the body on one DuckDB thread, then restore the setting (it is the database's, shared
    by its cursors). A full load's commit writes the whole history: each DuckDB thread holds a
    Parquet row group of its own while writing, and with two threads the commit of a million
    rows rose ~90 MB above the fetch's plateau (one Dagster run: 691 -> 604 MB at its peak, the
    commit 2-4 s slower). Used for a transactions load's commit only."""
    (threads,) = conn.execute("SELECT current_setting('threads')").fetchone() or (None,)
    conn.execute("SET threads = 1")
    try:
        yield
    finally:
        # A connection the body left unusable keeps the body's own error, not this one's.
        with contextlib.suppress(duckdb.Error):
            if threads is not None:
                conn.execute(f"SET threads = {int(threads)}")
