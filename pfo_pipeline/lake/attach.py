"""Attaching the lake: one in-memory DuckDB per lake and process, whose cursors every caller gets,
the lake attached as `lake` and made the default catalog (SQL names stay
`ledger.bank_transactions`). A writer's first attach checks the catalog (`guard`: a lake never
restarts silently) and migrates it (`migrations`), under a lock for a SQLite catalog.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
from filelock import FileLock

from pfo_pipeline.lake import guard
from pfo_pipeline.lake.errors import LakeError, LakeMissing
from pfo_pipeline.lake.extensions import database_with
from pfo_pipeline.lake.location import CATALOG_ENV, LakeLocation
from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.lake.object_store import add_secret
from pfo_pipeline.lake.transactions import LAKE, is_commit_conflict

# No rows inlined in the catalog (migration 8 says why: flushing them lost history).
INLINING_ROW_LIMIT = 0
ATTACH_ATTEMPTS = 10


def _creates_the_lake(location: LakeLocation, *, read_only: bool) -> bool:
    """Whether this attach creates the lake; refuses one over an earlier lake's traces."""
    try:
        refusal, creating = guard.creation_verdict(location, read_only=read_only)
    except duckdb.Error as exc:
        raise LakeError(f"cannot read the lake's catalog {location.describe()}: {exc}") from None
    if refusal:
        raise LakeMissing(refusal)
    return creating


def _prepare_sqlite_catalog(path: Path, *, read_only: bool) -> None:
    """Create the SQLite catalog in WAL mode: readers then never block a committing writer."""
    if path.exists():
        return
    if read_only:
        raise LakeError(
            f"no ledger yet at {path}: run a sync first (or point {CATALOG_ENV} at the lake)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=30) as db:
        db.execute("PRAGMA journal_mode=WAL")


@contextmanager
def catalog_lock(catalog: str) -> Iterator[None]:
    """Processes creating or migrating a SQLite-catalogued lake take turns. Done at once, the
    creation met "database is locked" from SQLite, two concurrent first migrations left
    processes seeing different rows of the same table, and a process that had attached the
    lake before another migrated it failed an internal assertion of DuckDB. Held while a writer
    first attaches a lake and migrates it (attached lakes are kept, `connect`), re-entrant in a
    thread. A PostgreSQL catalog's races are commit conflicts, retried.
    """
    if not catalog.startswith("sqlite:"):
        yield
        return
    path = Path(catalog.split(":", 1)[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=300, is_singleton=True):
        yield


def connect(
    location: LakeLocation | None = None,
    *,
    read_only: bool = False,
    snapshot_version: int | None = None,
    snapshot_time: datetime | str | None = None,
    relocated: bool = False,
    shared: bool = True,
) -> duckdb.DuckDBPyConnection:
    """A connection with the lake attached as `lake` and selected as the default catalog.

    Loading DuckLake and attaching costs ~0.2 s, so each process keeps one in-memory DuckDB per
    lake and hands out cursors of it: each is its own connection (own transactions, own temp
    tables), and each transaction reads the lake's latest snapshot, whoever committed it.
    `snapshot_version` / `snapshot_time` attach the lake as it was then (read-only time travel,
    a fresh database each time). `relocated` accepts a data path other than the one the catalog
    was created with (a lake copied or moved whole); otherwise a mismatch is an error.
    `shared=False` gives a database of its own, as another process would have.
    """
    location = (location or LakeLocation.from_env()).resolved()
    key = (location, read_only, relocated)
    time_travel = snapshot_version is not None or snapshot_time is not None
    if not time_travel and not shared:
        return _attach(location, read_only=read_only, relocated=relocated)
    if not time_travel:
        with _INSTANCES_LOCK:
            base = _INSTANCES.get(key)
            if base is None:
                base = _INSTANCES[key] = _attach(location, read_only=read_only, relocated=relocated)
            conn = base.cursor()
        conn.execute(f"USE {LAKE}")  # the default catalog is a per-connection setting
        return conn
    return _attach(
        location,
        read_only=True,
        relocated=relocated,
        snapshot_version=snapshot_version,
        snapshot_time=snapshot_time,
    )


_INSTANCES: dict[tuple[LakeLocation, bool, bool], duckdb.DuckDBPyConnection] = {}
_INSTANCES_LOCK = threading.Lock()


def _attach(
    location: LakeLocation,
    *,
    read_only: bool,
    relocated: bool,
    snapshot_version: int | None = None,
    snapshot_time: datetime | str | None = None,
) -> duckdb.DuckDBPyConnection:
    with contextlib.nullcontext() if read_only else catalog_lock(location.catalog):
        creating = _creates_the_lake(location, read_only=read_only)
        if creating:
            guard.announce_new_lake(location.describe().rsplit(" + ", 1)[0], location.data_path)
        if location.kind == "sqlite":
            _prepare_sqlite_catalog(Path(location.catalog.split(":", 1)[1]), read_only=read_only)
        if not location.on_s3 and not read_only:
            Path(location.data_path).mkdir(parents=True, exist_ok=True)
        options = [f"DATA_PATH '{_quote(location.data_path)}'"]
        if relocated:
            options.append("OVERRIDE_DATA_PATH TRUE")
        if snapshot_version is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot_version)}")
        elif snapshot_time is not None:
            options.append(f"SNAPSHOT_TIME '{_quote(str(snapshot_time))}'")
        elif read_only:
            options.append("READ_ONLY")
        else:
            options.append(f"DATA_INLINING_ROW_LIMIT {INLINING_ROW_LIMIT}")
        attach = f"ATTACH 'ducklake:{_quote(location.catalog)}' AS {LAKE} ({', '.join(options)})"
        for attempt in range(1, ATTACH_ATTEMPTS + 1):
            conn = lake_database(location)
            try:
                conn.execute(attach)
                conn.execute(f"USE {LAKE}")
                if not read_only:  # migrated before the lock lets another process attach it
                    migrate(conn)
                if creating:  # the new lake's first file: from now on its data path shows it
                    conn.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')")
                return conn
            except duckdb.Error as exc:
                conn.close()
                # Two processes creating the same new catalog race on its tables: the loser retries.
                racing = is_commit_conflict(exc) or "already exists" in str(exc).lower()
                if not racing or attempt == ATTACH_ATTEMPTS:
                    raise LakeError(
                        f"cannot open the lake at {location.describe()}: {exc}"
                    ) from None
                time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def lake_database(location: LakeLocation) -> duckdb.DuckDBPyConnection:
    """A new DuckDB ready to attach the lake: DuckLake and its catalog's extension loaded, and
    for a data path on S3, httpfs and the lake's S3 secret (`object_store`)."""
    extensions = ("ducklake", location.kind, *(("httpfs",) if location.on_s3 else ()))
    try:
        conn = database_with(*extensions)
    except duckdb.Error as exc:
        raise LakeError(f"cannot load DuckDB's lake extensions: {exc}") from None
    if location.on_s3:
        try:
            add_secret(conn, location.data_path)
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def open_lake(
    location: LakeLocation | None = None, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = connect(location, read_only=read_only)
    try:
        yield conn
    finally:
        conn.close()


def _quote(text: str) -> str:
    return text.replace("'", "''")
