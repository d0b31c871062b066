"""Tables of a load's staging file: a throwaway local DuckDB database attached as `_stage_<hex>`
beside the lake, never the lake itself. The only place outside the lake migrations that creates
a table, and it refuses any target outside a staging database."""

from __future__ import annotations

import duckdb

STAGE_PREFIX = "_stage_"


def create_stage_table(conn: duckdb.DuckDBPyConnection, table: str, select_sql: str) -> None:
    """`CREATE OR REPLACE TABLE table AS select_sql`, only for a table of a staging database."""
    if not table.startswith(STAGE_PREFIX):
        raise ValueError(f"{table!r} is not in a staging database")
    conn.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")
