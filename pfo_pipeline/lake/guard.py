"""The lake never restarts silently.

DuckLake creates a catalog wherever it is pointed: a deleted or truncated SQLite catalog (or an
emptied PostgreSQL one) used to become a new, empty lake at the next sync, which exited 0, and
maintenance then deleted the old lake's Parquet files as unknown. Here, before any attach:

- a catalog that holds a DuckLake is opened as usual;
- a catalog that is missing or empty (no file, zero bytes, a SQLite file without tables, a
  PostgreSQL database without DuckLake tables) becomes a new lake only when nothing of an earlier
  lake is left: the data path is absent or empty (and no SQLite write-ahead log remains). Then the
  creation is logged, and the new lake's first rows are written to a Parquet file at once, so
  every lake leaves a trace in its data path from its first moment;
- otherwise every writer (and reader) stops with `LakeMissing`, naming both locations and how to
  recover.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pfo_pipeline.lake.errors import LakeError
from pfo_pipeline.lake.extensions import database_with
from pfo_pipeline.lake.location import LakeLocation, is_s3

logger = logging.getLogger("pfo_pipeline.lake")
DUCKLAKE_MARKER_TABLE = "ducklake_metadata"
TRACES_SHOWN = 3


@dataclass(frozen=True)
class CatalogState:
    """What the catalog holds: a lake, nothing (may be created), or something else."""

    has_lake: bool
    description: str  # why it is not a lake, for the error message ("missing", "empty file"...)


def sqlite_catalog_state(path: Path) -> CatalogState:
    if not path.exists():
        return CatalogState(False, "does not exist")
    if path.stat().st_size == 0:
        return CatalogState(False, "is an empty (zero-byte) file")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        return CatalogState(False, f"is not a readable SQLite database ({exc})")
    if DUCKLAKE_MARKER_TABLE in tables:
        return CatalogState(True, "holds a lake")
    if tables:
        return CatalogState(False, f"is a SQLite database without DuckLake tables ({len(tables)})")
    return CatalogState(False, "is a SQLite file without any table")


def postgres_catalog_state(conn: duckdb.DuckDBPyConnection, dsn: str) -> CatalogState:
    """Looks for DuckLake's tables in the PostgreSQL database (any schema), read-only."""
    quoted = dsn.replace("'", "''")
    conn.execute(f"ATTACH '{quoted}' AS pfo_catalog_probe (TYPE postgres, READ_ONLY)")
    try:
        found = conn.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE database_name = 'pfo_catalog_probe' AND table_name = ?",
            [DUCKLAKE_MARKER_TABLE],
        ).fetchall()[0][0]
    finally:
        conn.execute("DETACH pfo_catalog_probe")
    if found:
        return CatalogState(True, "holds a lake")
    return CatalogState(False, "has no DuckLake tables")


def traces_of_a_lake(data_path: str, catalog_path: Path | None) -> list[str]:
    """Files that an earlier lake left: anything in the data path (a local folder or a bucket's
    prefix), a catalog's leftover write-ahead log."""
    traces: list[str] = []
    if catalog_path is not None:
        wal = catalog_path.with_name(catalog_path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            traces.append(str(wal))
    if is_s3(data_path):
        from pfo_pipeline.lake.lake_files import LakeFiles  # pyarrow: only for a new lake

        try:
            traces += LakeFiles(data_path).listing(TRACES_SHOWN)
        except OSError as exc:  # pyarrow's message names the bucket and the S3 error only
            raise LakeError(
                f"cannot list the lake's data path {data_path} to check it holds no earlier "
                f"lake: {exc}. Check AWS_ENDPOINT_URL, the credentials and the bucket"
            ) from None
    else:
        folder = Path(data_path)
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file():
                    traces.append(str(path))
                    if len(traces) >= TRACES_SHOWN:
                        break
    return traces


def refusal(catalog_shown: str, data_path: str, state: CatalogState, traces: list[str]) -> str:
    """The error every writer stops with: both locations, what was found, how to recover."""
    shown = ", ".join(traces[:TRACES_SHOWN])
    return (
        f"the lake's catalog {catalog_shown} {state.description}, but its data path {data_path} "
        f"holds an earlier lake's files ({shown}{', …' if len(traces) >= TRACES_SHOWN else ''}). "
        "Nothing was written: a new catalog here would silently start an empty ledger and orphan "
        "that lake's files. To recover, restore the catalog from your backup to where "
        "PFO_LAKE_CATALOG points (or point PFO_LAKE_CATALOG at the right catalog). To start a new, "
        f"empty lake on purpose, move {data_path} (and any catalog file left) aside first."
    )


def announce_new_lake(catalog_shown: str, data_path: str) -> None:
    logger.info(
        "Creating a new, empty lake: catalog %s, data path %s (both were empty or absent)",
        catalog_shown,
        data_path,
    )


def creation_verdict(
    location: LakeLocation,
    *,
    read_only: bool,
) -> tuple[str | None, bool]:
    """(the refusal, if any; whether this attach creates the lake)."""
    catalog_path = None
    if location.kind == "sqlite":
        catalog_path = Path(location.catalog.split(":", 1)[1])
        state = sqlite_catalog_state(catalog_path)
    elif read_only:
        return None, False  # a read-only attach never creates a catalog
    else:
        probe = database_with("postgres")  # to look into a PostgreSQL catalog
        try:
            state = postgres_catalog_state(probe, location.catalog.split(":", 1)[1])
        finally:
            probe.close()
    if state.has_lake:
        return None, False
    traces = traces_of_a_lake(location.data_path, catalog_path)
    if traces:
        shown = location.describe().rsplit(" + ", 1)[0]
        return refusal(shown, location.data_path, state, traces), False
    return None, not read_only
