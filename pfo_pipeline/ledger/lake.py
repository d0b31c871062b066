"""The one door to the ledger: a DuckLake (a catalog database plus Parquet data files).

Nothing else knows where the lake lives. `PFO_LAKE_CATALOG` is a DuckLake catalog string
(`sqlite:PATH`, the default `sqlite:data/pfo_catalog.sqlite`, or `postgres:dbname=… host=…`) and
`PFO_LAKE_DATA_PATH` the data path (default `data/lake/`). Every schema (`ledger`, `staging`,
`analytics`, `knowledge`, `telemetry`) lives in the lake, attached as `lake` and made the default
catalog, so SQL names stay `ledger.bank_transactions`.

Why a lake: snapshot isolation lets analysts, dbt and any number of writers (other tenants, other
machines on a PostgreSQL catalog) work at once; a writer conflicts only at commit, and
`run_transaction` retries it from a fresh snapshot. The extensions load from the registry wheels'
folder (`duckdb-ext-ducklake`, `-sqlite`, `-postgres`): nothing is downloaded at run time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb
from filelock import FileLock

from pfo_pipeline.ledger import lake_guard

CATALOG_ENV = "PFO_LAKE_CATALOG"
DATA_PATH_ENV = "PFO_LAKE_DATA_PATH"
DEFAULT_CATALOG = "sqlite:data/pfo_catalog.sqlite"
DEFAULT_DATA_PATH = "data/lake/"
LAKE = "lake"
# No rows inlined in the catalog (migration 8 says why: flushing them lost history).
INLINING_ROW_LIMIT = 0
ATTACH_ATTEMPTS = 10
# Bounded memory per connection (big loads spill to a temp folder), no insertion-order bookkeeping,
# and no cache of the lake's Parquet files in DuckDB's memory: a full load's derivations scan the
# whole history (the transfer pairing once per chunk), and the cache kept what they read up to
# the memory limit, so the process's memory followed the history (5M rows: +150 MB at the
# commit, +900 MB for one whole-history pairing on its own). A local data path's reads are
# cached by the system instead, outside the process; none was slower without it.
CONNECTION_SETTINGS = {
    "memory_limit": "1GB",
    "preserve_insertion_order": False,
    "enable_external_file_cache": False,
}

logger = logging.getLogger("pfo_pipeline.lake")
T = TypeVar("T")


class LakeError(RuntimeError):
    """The lake cannot be opened or written, with what to do about it."""


class LakeMissing(LakeError):
    """The catalog is missing or empty while an earlier lake's files remain (`lake_guard`)."""


class LakeCommitConflict(LakeError):
    """Other writers kept committing first: the commit was retried and gave up."""


@dataclass(frozen=True)
class LakeLocation:
    """Where the lake lives: a DuckLake catalog string and a data path."""

    catalog: str
    data_path: str

    @classmethod
    def from_env(cls) -> LakeLocation:
        return cls(
            os.environ.get(CATALOG_ENV) or DEFAULT_CATALOG,
            os.environ.get(DATA_PATH_ENV) or DEFAULT_DATA_PATH,
        )

    @classmethod
    def in_folder(cls, folder: Path | str) -> LakeLocation:
        """A self-contained lake in one folder (tests, benchmarks, throwaway ledgers)."""
        folder = Path(folder)
        return cls(f"sqlite:{folder / 'pfo_catalog.sqlite'}", str(folder / "lake") + "/")

    @property
    def kind(self) -> str:
        kind = self.catalog.split(":", 1)[0]
        if kind not in ("sqlite", "postgres") or ":" not in self.catalog:
            raise LakeError(
                f"{CATALOG_ENV}: {self.catalog!r} is not a DuckLake catalog string; use "
                "'sqlite:PATH' or 'postgres:dbname=… host=… user=…'"
            )
        return kind

    def resolved(self) -> LakeLocation:
        """Local paths made absolute: the catalog remembers the data path it was created with."""
        catalog = self.catalog
        if self.kind == "sqlite":
            catalog = "sqlite:" + str(Path(self.catalog.split(":", 1)[1]).expanduser().resolve())
        data_path = self.data_path
        if "://" not in data_path:
            data_path = str(Path(data_path).expanduser().resolve()) + "/"
        return LakeLocation(catalog, data_path)

    def env(self) -> dict[str, str]:
        """The two variables that point a subprocess (dbt, a step, `pfo sql`) at this lake."""
        resolved = self.resolved()
        return {CATALOG_ENV: resolved.catalog, DATA_PATH_ENV: resolved.data_path}

    def describe(self) -> str:
        """Where the lake is, without credentials (a PostgreSQL string may hold a password)."""
        if self.kind == "postgres":
            parts = [p for p in self.catalog.split(":", 1)[1].split() if "password" not in p]
            return f"postgres:{' '.join(parts)} + {self.data_path}"
        return f"{self.catalog} + {self.data_path}"


def extension_directory() -> str:
    """The folder the `duckdb-ext-*` wheels install (DuckDB appends version and platform)."""
    try:
        import duckdb_ext
    except ImportError as exc:  # pragma: no cover - a broken install
        raise LakeError(
            "the DuckLake extensions are not installed: pip install "
            "'duckdb-ext-ducklake==1.4.4.*' 'duckdb-ext-sqlite==1.4.4.*' 'duckdb-ext-postgres==1.4.4.*'"
        ) from exc
    return str(Path(next(iter(duckdb_ext.__path__))) / "extensions")


def connection_config() -> dict[str, object]:
    """DuckDB settings of every lake connection (dbt's profile repeats them)."""
    return {
        "extension_directory": extension_directory(),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": True,
        **CONNECTION_SETTINGS,
    }


# Extensions DuckDB has loaded, signature checked, in this process (see `_database_with`).
_VERIFIED_EXTENSIONS: set[str] = set()
_VERIFIED_LOCK = threading.Lock()


def _database_with(*extensions: str) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with these extensions loaded.

    DuckDB checks an extension's signature on every LOAD by reading the whole file (~50 MB each,
    0.1-0.2 s: a third of a second per lake attach, many times a test or a run). The first load
    of each extension in a process is checked; the library then stays mapped into the process,
    and a later database loading the same path gets that very mapped code back from the dynamic
    loader, so re-reading the file proves nothing new: such databases skip the check. One that
    needs an extension not yet checked in this process checks it. (An extension such a database
    autoloads for the first time is not checked: the extension folder holds only the files pip
    installed from the package registry, as trusted as the Python code running this process.)
    """
    with _VERIFIED_LOCK:
        verified = set(extensions) <= _VERIFIED_EXTENSIONS
    config = {**connection_config(), "allow_unsigned_extensions": verified}
    conn = duckdb.connect(config=config)
    try:
        for extension in extensions:
            conn.execute(f"LOAD {extension}")
            if extension == "ducklake":
                _disable_ducklake_commit_retry(conn)
    except BaseException:
        conn.close()
        raise
    if not verified:
        with _VERIFIED_LOCK:
            _VERIFIED_EXTENSIONS.update(extensions)
    return conn


def _disable_ducklake_commit_retry(conn: duckdb.DuckDBPyConnection) -> None:
    """DuckLake's own commit retry re-commits the same transaction; with several writers on a
    PostgreSQL catalog it deleted a delete-file its first attempt had written (a later read then
    failed with "No files found"). Every write here goes through `run_transaction`, which redoes
    the work from a fresh snapshot instead."""
    conn.execute("SET ducklake_max_retry_count = 0")


def _creates_the_lake(location: LakeLocation, *, read_only: bool) -> bool:
    """Whether this attach creates the lake; refuses one over an earlier lake's traces."""
    try:
        refusal, creating = lake_guard.creation_verdict(
            location, read_only=read_only, open_probe=lambda: _database_with("postgres")
        )
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
            lake_guard.announce_new_lake(
                location.describe().rsplit(" + ", 1)[0], location.data_path
            )
        if location.kind == "sqlite":
            _prepare_sqlite_catalog(Path(location.catalog.split(":", 1)[1]), read_only=read_only)
        if "://" not in location.data_path and not read_only:
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
            try:
                conn = _database_with("ducklake", location.kind)
            except duckdb.Error as exc:
                raise LakeError(f"cannot load DuckDB's lake extensions: {exc}") from None
            try:
                conn.execute(attach)
                conn.execute(f"USE {LAKE}")
                if not read_only:
                    # Migrated before the lock lets another process attach it (the schema
                    # module builds on this one, hence the import here).
                    from pfo_pipeline.ledger.schema import migrate

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


@contextmanager
def open_lake(
    location: LakeLocation | None = None, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = connect(location, read_only=read_only)
    try:
        yield conn
    finally:
        conn.close()


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


def _quote(text: str) -> str:
    return text.replace("'", "''")


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


def current_snapshot(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute(f"SELECT max(snapshot_id) FROM {LAKE}.snapshots()").fetchall()[0][0]
