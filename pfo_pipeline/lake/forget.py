"""Forgetting text in the lake's history: rows rewritten where their text lies, in every file and
inlined row a table ever had, and no min/max statistics of text that must be forgettable.

Deleting a row only ends it at a snapshot: every earlier snapshot (time travel, `pfo sql
--as-of`) still reads the same data files, and DuckLake records each column's min and max in its
catalog, whole. Expiring the snapshots that hold the rows would end time travel for the whole
lake, so instead:

- `rewrite_history` rewrites every data file the catalog lists for a table (current, ended, or
  scheduled for deletion) in place with the given rows' columns replaced, row for row (same
  rows, order, row ids and field ids: the catalog's other records stay true; its file size and
  footer size are updated), and the same is done to rows inlined in the catalog;
- the catalog keeps no min/max of `TEXT_WITHOUT_STATISTICS` at all (`scrub_text_statistics`,
  after every write of those tables and after maintenance): "no statistics" is a valid bound;
- `vacuum_sqlite_catalog` then drops a SQLite catalog's free pages and write-ahead log, where
  overwritten rows linger. (A PostgreSQL catalog's old row versions go with its own vacuum.)

What to forget is the caller's business (the knowledge space's retention, `knowledge.retention`).
"""

from __future__ import annotations

import logging
import posixpath
import sqlite3
import time

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pfo_pipeline.lake.lake_files import LakeFiles, join
from pfo_pipeline.lake.transactions import LAKE

META = f"__ducklake_metadata_{LAKE}"
# Columns whose text must be forgettable, so the catalog keeps no statistics of them (a property
# of the tables, declared here beside their migrations).
TEXT_WITHOUT_STATISTICS = {
    ("knowledge", "financial_overview"): ("markdown", "summary"),
    ("knowledge", "financial_overview_chunks"): ("content",),
}
VACUUM_ATTEMPTS = 20
logger = logging.getLogger("pfo_pipeline.lake")


def _table_ids(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[int]:
    """Every catalog id the table ever had (a table dropped and created again has two)."""
    return [
        table_id
        for (table_id,) in conn.execute(
            f"SELECT t.table_id FROM {META}.ducklake_table t JOIN {META}.ducklake_schema s "
            "USING (schema_id) WHERE s.schema_name = ? AND t.table_name = ?",
            [schema, table],
        ).fetchall()
    ]


def scrub_text_statistics(conn: duckdb.DuckDBPyConnection) -> None:
    """Drop the catalog's min/max of every `TEXT_WITHOUT_STATISTICS` column (file and table
    level)."""
    for (schema, table), columns in TEXT_WITHOUT_STATISTICS.items():
        names = ", ".join("?" for _ in columns)
        for stats in ("ducklake_file_column_stats", "ducklake_table_column_stats"):
            conn.execute(
                f"UPDATE {META}.{stats} AS st SET min_value = NULL, max_value = NULL "
                "WHERE (st.min_value IS NOT NULL OR st.max_value IS NOT NULL) AND EXISTS ("
                f"SELECT 1 FROM {META}.ducklake_column c "
                f"JOIN {META}.ducklake_table t ON t.table_id = c.table_id "
                f"JOIN {META}.ducklake_schema s ON s.schema_id = t.schema_id "
                "WHERE c.table_id = st.table_id AND c.column_id = st.column_id "
                f"AND s.schema_name = ? AND t.table_name = ? AND c.column_name IN ({names}))",
                [schema, table, *columns],
            )


def _data_path(conn: duckdb.DuckDBPyConnection) -> str:
    """The data path this connection reads: the catalog's, unless the lake was attached at
    another one (a copied lake, `relocated`), which only the files' resolved paths tell."""
    tables = conn.execute(
        f"SELECT s.schema_name, t.table_name, s.path, t.path FROM {META}.ducklake_table t "
        f"JOIN {META}.ducklake_schema s USING (schema_id) WHERE t.end_snapshot IS NULL "
        "AND s.end_snapshot IS NULL AND s.path_is_relative AND t.path_is_relative"
    ).fetchall()
    for schema, table, schema_path, table_path in tables:
        files = conn.execute(
            f"SELECT data_file FROM ducklake_list_files('{LAKE}', ?, schema => ?) LIMIT 1",
            [table, schema],
        ).fetchall()
        if files:
            full = files[0][0]
            suffix = f"{schema_path}{table_path}{posixpath.basename(full)}"
            if full.endswith(suffix):
                return full[: -len(suffix)]
    return conn.execute(
        f"SELECT value FROM {META}.ducklake_metadata WHERE key = 'data_path' AND scope IS NULL"
    ).fetchall()[0][0]


def _table_folder(conn: duckdb.DuckDBPyConnection, table_id: int, data_path: str) -> str:
    schema_path, schema_relative, table_path, table_relative = conn.execute(
        f"SELECT s.path, s.path_is_relative, t.path, t.path_is_relative "
        f"FROM {META}.ducklake_table t JOIN {META}.ducklake_schema s USING (schema_id) "
        "WHERE t.table_id = ? ORDER BY t.begin_snapshot DESC LIMIT 1",
        [table_id],
    ).fetchall()[0]
    base = join(data_path, schema_path) if schema_relative else schema_path
    return join(base, table_path) if table_relative else table_path


def history_files(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, files: LakeFiles | None = None
) -> list[tuple[int | None, str]]:
    """(data_file_id, or None once scheduled for deletion; path or URL) of every file that
    holds or held rows of the table."""
    data_path = _data_path(conn)
    files = files or LakeFiles(data_path)
    found: list[tuple[int | None, str]] = []
    for table_id in _table_ids(conn, schema, table):
        folder = _table_folder(conn, table_id, data_path)
        for file_id, path, relative in conn.execute(
            f"SELECT data_file_id, path, path_is_relative FROM {META}.ducklake_data_file "
            "WHERE table_id = ?",
            [table_id],
        ).fetchall():
            found.append((file_id, join(folder, path) if relative else path))
        for _file_id, path, relative in conn.execute(
            f"SELECT d.data_file_id, d.path, d.path_is_relative "
            f"FROM {META}.ducklake_files_scheduled_for_deletion d "
            "WHERE d.path LIKE ?",
            [f"%{table}/%"],
        ).fetchall():
            candidate = join(data_path, path) if relative else path
            if posixpath.basename(posixpath.dirname(candidate)) == table or table in (
                candidate.split("/")
            ):
                found.append((None, candidate))
    existing = files.existing([path for _, path in found])
    return [(file_id, path) for file_id, path in found if path in existing]


def inlined_tables(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """The catalog tables holding rows of `table` inlined (in `META`)."""
    names = []
    for table_id in _table_ids(conn, schema, table):
        names += [
            name
            for (name,) in conn.execute(
                f"SELECT table_name FROM {META}.ducklake_inlined_data_tables WHERE table_id = ?",
                [table_id],
            ).fetchall()
        ]
    return names


def history_rows(
    conn: duckdb.DuckDBPyConnection, schema: str, table: str, columns: list[str]
) -> pa.Table:
    """`columns` of every row the table ever held, in any version (files and inlined rows)."""
    files = LakeFiles(_data_path(conn))
    parts = [
        files.read_table(path, columns=columns)
        for _, path in history_files(conn, schema, table, files)
    ]
    for inlined in inlined_tables(conn, schema, table):
        parts.append(
            conn.execute(f"SELECT {', '.join(columns)} FROM {META}.{inlined}").fetch_arrow_table()
        )
    parts = [part.cast(parts[0].schema) for part in parts] if parts else parts
    return pa.concat_tables(parts) if parts else pa.table({c: pa.array([]) for c in columns})


def _rewrite_file(
    files: LakeFiles,
    path: str,
    key_column: str,
    keys: pa.Array,
    replacements: dict[str, str],
) -> tuple[int, int] | None:
    """Replace the columns of the rows whose key is in `keys` in this file, row for row; the
    new file's (size, footer size) if it held any."""
    table = files.read_table(path)
    if key_column not in table.column_names:
        return None
    mask = pc.fill_null(pc.is_in(table[key_column].combine_chunks(), value_set=keys), False)
    if not pc.any(mask).as_py():
        return None
    for column, replacement in replacements.items():
        if column not in table.column_names:
            continue
        index = table.column_names.index(column)
        field = table.schema.field(index)
        values = table[column].combine_chunks()
        extension = isinstance(field.type, pa.BaseExtensionType)  # JSON: text stored as a string
        storage = values.storage if extension else values
        blanked = pc.if_else(mask, pa.scalar(replacement, type=storage.type), storage)
        if extension:
            blanked = pa.ExtensionArray.from_storage(field.type, blanked)
        table = table.set_column(index, field, blanked)
    written = files.replace_table(table, path)
    return written.size, files.footer_size(path, written.size)


def rewrite_history(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    key_column: str,
    keys: pa.Array,
    replacements: dict[str, str],
) -> tuple[int, int]:
    """Replace `replacements`' columns of the rows whose `key_column` is in `keys`, in every file
    and inlined row the table ever had; (files rewritten, inlined rows rewritten). The caller
    commits a new snapshot afterwards, so no process goes on reading the rewritten files with
    the sizes it cached for the previous one."""
    if not len(keys):
        return 0, 0
    lake_files = LakeFiles(_data_path(conn))
    files = rows = 0
    for file_id, path in history_files(conn, schema, table, lake_files):
        rewritten = _rewrite_file(lake_files, path, key_column, keys, replacements)
        if rewritten is None:
            continue
        files += 1
        if file_id is not None:
            conn.execute(
                f"UPDATE {META}.ducklake_data_file SET file_size_bytes = ?, footer_size = ? "
                "WHERE data_file_id = ?",
                [*rewritten, file_id],
            )
    marks = ", ".join("?" for _ in range(len(keys)))
    sets = ", ".join(f"{column} = ?" for column in replacements)
    for inlined in inlined_tables(conn, schema, table):
        rows += conn.execute(
            f"UPDATE {META}.{inlined} SET {sets} WHERE {key_column} IN ({marks})",
            [*replacements.values(), *keys.to_pylist()],
        ).fetchall()[0][0]
    return files, rows


def vacuum_sqlite_catalog(conn: duckdb.DuckDBPyConnection) -> bool:
    """Rewrite a SQLite catalog without its free pages, and empty its write-ahead log."""
    rows = conn.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = ? AND type = 'ducklake'", [LAKE]
    ).fetchall()
    path = rows[0][0] if rows and rows[0][0] else ""
    if not path.startswith("sqlite:"):
        return False
    for attempt in range(1, VACUUM_ATTEMPTS + 1):
        try:
            with sqlite3.connect(path.split(":", 1)[1], timeout=30, isolation_level=None) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return True
        except sqlite3.OperationalError as exc:  # another writer holds it: try again shortly
            if attempt == VACUUM_ATTEMPTS:
                logger.warning("Could not vacuum the lake's catalog %s: %s", path, exc)
                return False
            time.sleep(0.1 * attempt)
    return False
