"""A load's staging folder: its batches as Parquet files, plus a throwaway local DuckDB database
attached as `_stage_<hex>` for the few helper tables the commit needs, never the lake itself.
The only place outside the lake migrations that creates a table, and it refuses any target
outside a staging database.

Why Parquet files for the batches: writing a batch keeps nothing in DuckDB's buffer pool, and
reading them back at the commit is a plain scan. (Inserting them into the staging database cost
3x the CPU, mostly its compression analysis, and its buffer pool held hundreds of MB while the
load fetched.)
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

STAGE_PREFIX = "_stage_"


def create_stage_table(conn: duckdb.DuckDBPyConnection, table: str, select_sql: str) -> None:
    """`CREATE OR REPLACE TABLE table AS select_sql`, only for a table of a staging database."""
    if not table.startswith(STAGE_PREFIX):
        raise ValueError(f"{table!r} is not in a staging database")
    conn.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")


def write_stage_batch(conn: duckdb.DuckDBPyConnection, path: Path, select_sql: str) -> None:
    """Write one batch (`select_sql`'s rows, computed by DuckDB) to a Parquet file of the
    staging folder. Arrow's Parquet writer does it in a fraction of the CPU of DuckDB's COPY."""
    batch = conn.execute(select_sql).fetch_arrow_table()
    pq.write_table(batch, path, compression="snappy")


def read_stage_batches(paths: list[Path]) -> str:
    """The SQL relation of every staged batch (`paths` must not be empty)."""
    quoted = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}])"
