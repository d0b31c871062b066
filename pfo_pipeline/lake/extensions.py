"""The DuckDB database every lake connection starts from: the lake extensions loaded from the
registry wheels' folder (`duckdb-ext-ducklake`, `-sqlite`, `-postgres`; nothing is downloaded at
run time) and the settings every lake connection shares (dbt's profile repeats them)."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from pfo_pipeline.lake import extension_trust
from pfo_pipeline.lake.errors import LakeError

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


# Extensions DuckDB has loaded, signature checked, in this process (see `database_with`).
_VERIFIED_EXTENSIONS: set[str] = set()
_VERIFIED_LOCK = threading.Lock()


def database_with(*extensions: str) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with these extensions loaded.

    DuckDB checks an extension's signature on every LOAD by reading the whole file (~50 MB each,
    0.1-0.2 s: a third of a second per lake attach, many times a test or a run). The first load
    of each extension in a process is checked; the library then stays mapped into the process,
    and a later database loading the same path gets that very mapped code back from the dynamic
    loader, so re-reading the file proves nothing new: such databases skip the check. A new
    process skips it too for a file checked before and unchanged since (`extension_trust`). One
    that needs an extension not yet checked checks it. (An extension such a database
    autoloads for the first time is not checked: the extension folder holds only the files pip
    installed from the package registry, as trusted as the Python code running this process.)
    """
    directory = extension_directory()
    with _VERIFIED_LOCK:
        verified = set(extensions) <= _VERIFIED_EXTENSIONS
    if not verified and extension_trust.already_checked(directory, extensions):
        verified = True
        with _VERIFIED_LOCK:
            _VERIFIED_EXTENSIONS.update(extensions)
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
        extension_trust.remember_checked(directory, extensions)
    return conn


def _disable_ducklake_commit_retry(conn: duckdb.DuckDBPyConnection) -> None:
    """DuckLake's own commit retry re-commits the same transaction; with several writers on a
    PostgreSQL catalog it deleted a delete-file its first attempt had written (a later read then
    failed with "No files found"). Every write here goes through `run_transaction`, which redoes
    the work from a fresh snapshot instead."""
    conn.execute("SET ducklake_max_retry_count = 0")
