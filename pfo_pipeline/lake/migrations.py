"""The lake's DDL (every schema's tables) as numbered migrations, applied automatically.
Each migration is a file `sql/migrations/NNNN_<what>.sql`; nothing else creates a lake table.
DuckLake has no keys: ids are kept unique by the merge logic in `store` and proven by checks.

Conventions: times that come from Powens are naive `TIMESTAMP`s holding Powens' Europe/Paris
wall-clock exactly as sent; times of our own clock are `TIMESTAMPTZ`. Money is `DECIMAL(18,2)`.
"""

from __future__ import annotations

import threading

import duckdb

from pfo_pipeline.lake.transactions import run_transaction
from pfo_pipeline.sql_files import load_sql, sql_names

MIGRATIONS_FOLDER = "migrations"


def _numbered_migrations() -> list[tuple[int, str]]:
    """`sql/migrations/NNNN_<what>.sql`, in order: (version, DDL). Versions run 1, 2, 3… with
    no gap, so a migration file added out of order fails at import rather than in a lake."""
    names = sql_names(__name__, MIGRATIONS_FOLDER)
    versions = [int(name.removeprefix(f"{MIGRATIONS_FOLDER}/").split("_", 1)[0]) for name in names]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"ledger migrations must be numbered 1..n without gaps: {names}")
    return [
        (version, load_sql(__name__, name)) for version, name in zip(versions, names, strict=True)
    ]


MIGRATIONS: list[tuple[int, str]] = _numbered_migrations()
LATEST_VERSION = MIGRATIONS[-1][0]

# Lake catalogs this process has seen at the latest version. A lake never goes back a version,
# so the check (a read of the lake's catalog, ~15 ms) runs once per lake and process instead of
# on every connection a run opens.
_AT_LATEST: set[str] = set()
_AT_LATEST_LOCK = threading.Lock()


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the lake to the latest schema version; safe to call on every connection, and from
    several processes at once (a concurrent migration is a commit conflict, retried)."""
    catalog = _lake_catalog_of(conn)
    with _AT_LATEST_LOCK:
        if catalog in _AT_LATEST:
            return LATEST_VERSION
    if _applied(conn) < LATEST_VERSION:
        _apply_missing(conn)  # on a lake, under the catalog lock of its first attach (`lake`)
    if catalog:
        with _AT_LATEST_LOCK:
            _AT_LATEST.add(catalog)
    return LATEST_VERSION


def _apply_missing(conn: duckdb.DuckDBPyConnection) -> None:
    for version, ddl in MIGRATIONS:

        def apply(version: int = version, ddl: str = ddl) -> None:
            # The one table outside the numbered files: the record of which of them ran.
            conn.execute("CREATE SCHEMA IF NOT EXISTS ledger")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger.schema_migrations "
                "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            done = conn.execute(
                "SELECT count(*) FROM ledger.schema_migrations WHERE version = ?", [version]
            ).fetchall()[0][0]
            if done:
                return
            conn.execute(ddl)
            conn.execute("INSERT INTO ledger.schema_migrations VALUES (?, now())", [version])

        if _applied(conn) >= version:
            continue
        run_transaction(conn, apply, what=f"ledger schema migration {version}")


def _lake_catalog_of(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The current lake's catalog (`sqlite:…`, `postgres:…`; None if not a lake): a local lookup,
    no catalog read."""
    rows = conn.execute(
        "SELECT path FROM duckdb_databases() "
        "WHERE database_name = current_database() AND type = 'ducklake'"
    ).fetchall()
    return rows[0][0] if rows and rows[0][0] else None


def _applied(conn: duckdb.DuckDBPyConnection) -> int:
    try:
        return conn.execute(
            "SELECT coalesce(max(version), 0) FROM ledger.schema_migrations"
        ).fetchall()[0][0]
    except duckdb.CatalogException:
        return 0
