"""A load's scratch space beside the lake: a private local folder (`scratch_folder`: mode 0700,
swept when its owner process dies) holding Parquet files, and a throwaway DuckDB database in it,
attached to the lake connection as `_stage_<hex>`, for the few helper tables a commit needs.

The only place outside the lake migrations that creates a table, and only in its own scratch
database. Everything written here is full rows (IBANs, wordings) until the load ends, hence the
private folder.

Why Parquet files for a load's batches: writing a batch keeps nothing in DuckDB's buffer pool,
and reading them back at the commit is a plain scan. (Inserting them into the scratch database
cost 3x the CPU, mostly its compression analysis, and its buffer pool held hundreds of MB while
the load fetched.) Arrow's Parquet writer writes one in a fraction of the CPU of DuckDB's COPY.
"""

from __future__ import annotations

import contextlib
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pfo_pipeline.lake.scratch_folder import StageFolder, new_stage_folder

SCRATCH_PREFIX = "_stage_"


def _quoted(path: Path) -> str:
    """A path this module made (a uuid folder under the private root), as a SQL string literal:
    ATTACH and COPY take no bound parameter for it."""
    return "'" + str(path).replace("'", "''") + "'"


class Scratch:
    """One load's scratch folder and database; `close()` (or the end of the process) removes
    both. The database is attached when a first table is made (never inside a lake
    transaction: the commit's derivations use the folder only); attached databases are shared by
    every cursor of the process's lake, so its alias is unique."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self._folder = new_stage_folder()  # private (0700); a dead load's is swept by the next
        self.alias = f"{SCRATCH_PREFIX}{uuid.uuid4().hex}"
        self._attached = [False]
        self._cleanup = weakref.finalize(
            self, _drop, conn, self.alias, self._attached, self._folder
        )

    @property
    def folder(self) -> Path:
        return self._folder.path

    def close(self) -> None:
        """Detach the database and delete the folder (idempotent)."""
        self._cleanup()

    def table(self, name: str) -> str:
        """The qualified name of a scratch table."""
        return f"{self.alias}.main.{name}"

    def create_table(self, name: str, select_sql: str) -> str:
        """`CREATE OR REPLACE TABLE` a scratch table as `select_sql`; its qualified name."""
        if not self._attached[0]:
            self.conn.execute(f"ATTACH {_quoted(self.folder / 'scratch.duckdb')} AS {self.alias}")
            self._attached[0] = True
        table = self.table(name)
        self.conn.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")
        return table

    def write_parquet(
        self, name: str, select_sql: str, *, on: duckdb.DuckDBPyConnection | None = None
    ) -> Path:
        """Write `select_sql`'s rows (computed by DuckDB, held once as Arrow) to a Parquet file;
        `on`: another connection to run the query on than the scratch's own."""
        path = self.folder / f"{name}.parquet"
        batch = (on or self.conn).execute(select_sql).fetch_arrow_table()
        pq.write_table(batch, path, compression="snappy")
        return path

    def copy_to_parquet(
        self, name: str, select_sql: str, params: Mapping[str, object] | None = None
    ) -> Path:
        """Stream `select_sql`'s rows to a Parquet file with DuckDB's COPY (nothing held in
        Python; small row groups, read back a range at a time)."""
        path = self.folder / f"{name}.parquet"
        self.conn.execute(
            f"COPY ({select_sql}) TO {_quoted(path)} (FORMAT parquet, ROW_GROUP_SIZE 20480)",
            dict(params or {}),
        )
        return path


def read_parquet_files(paths: list[Path]) -> str:
    """The SQL relation of several scratch Parquet files (`paths` must not be empty)."""
    return f"read_parquet([{', '.join(_quoted(p) for p in paths)}])"


def _drop(
    conn: duckdb.DuckDBPyConnection, alias: str, attached: list[bool], folder: StageFolder
) -> None:
    if attached[0]:
        with contextlib.suppress(duckdb.Error):
            conn.execute(f"DETACH DATABASE IF EXISTS {alias}")
    folder.cleanup()
