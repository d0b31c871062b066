"""Retention that forgets: an expired overview's text leaves the lake's history and statistics.

Deleting an entry only ends its rows at the sweep's snapshot: every earlier snapshot (time
travel, `pfo sql --as-of`) still reads the Markdown from the same data files, and DuckLake
records each text column's min and max in its catalog, whole. Expiring the snapshots that hold
an entry would end time travel for the whole lake (every entry deleted today was visible in all
of the window's snapshots), so instead the history is rewritten where the text is:

- every data file the catalog lists for the knowledge tables (current, ended, or scheduled for
  deletion) is rewritten in place with the expired entries' text replaced by a marker, row for
  row (same rows, order, row ids and field ids: the catalog's other records stay true; its file
  size and footer size are updated), and the same is done to rows inlined in the catalog;
- the catalog keeps no min/max for the knowledge text columns at all (`scrub_text_statistics`,
  after every write and after maintenance): "no statistics" is a valid bound in DuckLake;
- a SQLite catalog is then vacuumed: SQLite keeps overwritten rows in free pages and its
  write-ahead log until then. (A PostgreSQL catalog's old row versions go with PostgreSQL's
  own vacuum, which autovacuum runs; see the README.)

Ids, periods and dates stay: time travel before the sweep shows that an entry existed, not what
it said. Nothing else in the lake changes, so a query as of T on any other table is unchanged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pfo_pipeline.ledger.lake import LAKE, registered, run_transaction

SCHEMA = "knowledge"
ENTRIES = "financial_overview"
CHUNKS = "financial_overview_chunks"
# The columns that hold what an overview says; everything else is ids, dates and counts.
DOCUMENT_TEXT = {ENTRIES: ("markdown", "summary"), CHUNKS: ("content",)}
FORGOTTEN = {"markdown": "[forgotten: past the retention]", "summary": "{}",
             "content": "[forgotten: past the retention]"}  # fmt: skip
META = f"__ducklake_metadata_{LAKE}"
VACUUM_ATTEMPTS = 20
logger = logging.getLogger("pfo_pipeline.lake")


@dataclass(frozen=True)
class ForgetReport:
    files_rewritten: int
    inlined_rows_blanked: int


def _table_ids(conn: duckdb.DuckDBPyConnection, table: str) -> list[int]:
    return [
        table_id
        for (table_id,) in conn.execute(
            f"SELECT t.table_id FROM {META}.ducklake_table t JOIN {META}.ducklake_schema s "
            "USING (schema_id) WHERE s.schema_name = ? AND t.table_name = ?",
            [SCHEMA, table],
        ).fetchall()
    ]


def scrub_text_statistics(conn: duckdb.DuckDBPyConnection) -> None:
    """Drop the catalog's min/max of every knowledge text column (file and table level)."""
    targets = " OR ".join(
        f"(t.table_name = '{table}' AND c.column_name IN ({', '.join(repr(c) for c in columns)}))"
        for table, columns in DOCUMENT_TEXT.items()
    )
    for stats in ("ducklake_file_column_stats", "ducklake_table_column_stats"):
        conn.execute(
            f"UPDATE {META}.{stats} AS st SET min_value = NULL, max_value = NULL "
            "WHERE (st.min_value IS NOT NULL OR st.max_value IS NOT NULL) AND EXISTS ("
            f"SELECT 1 FROM {META}.ducklake_column c "
            f"JOIN {META}.ducklake_table t ON t.table_id = c.table_id "
            f"JOIN {META}.ducklake_schema s ON s.schema_id = t.schema_id "
            "WHERE c.table_id = st.table_id AND c.column_id = st.column_id "
            f"AND s.schema_name = '{SCHEMA}' AND ({targets}))"
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
            suffix = f"{schema_path}{table_path}{Path(full).name}"
            if full.endswith(suffix):
                return full[: -len(suffix)]
    return conn.execute(
        f"SELECT value FROM {META}.ducklake_metadata WHERE key = 'data_path' AND scope IS NULL"
    ).fetchall()[0][0]


def _table_folder(conn: duckdb.DuckDBPyConnection, table_id: int, data_path: str) -> Path:
    schema_path, schema_relative, table_path, table_relative = conn.execute(
        f"SELECT s.path, s.path_is_relative, t.path, t.path_is_relative "
        f"FROM {META}.ducklake_table t JOIN {META}.ducklake_schema s USING (schema_id) "
        "WHERE t.table_id = ? ORDER BY t.begin_snapshot DESC LIMIT 1",
        [table_id],
    ).fetchall()[0]
    base = Path(data_path) / schema_path if schema_relative else Path(schema_path)
    return base / table_path if table_relative else Path(table_path)


def _files(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int | None, Path]]:
    """(data_file_id or None, path) of every file that holds or held rows of the table."""
    data_path = _data_path(conn)
    found: list[tuple[int | None, Path]] = []
    for table_id in _table_ids(conn, table):
        folder = _table_folder(conn, table_id, data_path)
        for file_id, path, relative in conn.execute(
            f"SELECT data_file_id, path, path_is_relative FROM {META}.ducklake_data_file "
            "WHERE table_id = ?",
            [table_id],
        ).fetchall():
            found.append((file_id, folder / path if relative else Path(path)))
        for _file_id, path, relative in conn.execute(
            f"SELECT d.data_file_id, d.path, d.path_is_relative "
            f"FROM {META}.ducklake_files_scheduled_for_deletion d "
            "WHERE d.path LIKE ?",
            [f"%{table}/%"],
        ).fetchall():
            candidate = Path(data_path) / path if relative else Path(path)
            if candidate.parent.name == table or table in candidate.parts:
                found.append((None, candidate))
    return [(file_id, path) for file_id, path in found if path.exists()]


def _footer_size(path: Path) -> int:
    with path.open("rb") as handle:
        handle.seek(-8, os.SEEK_END)
        return struct.unpack("<I", handle.read(4))[0]


def _rewrite(path: Path, expired: pa.Array, columns: tuple[str, ...]) -> bool:
    """Replace the expired entries' text in this file, row for row; whether it held any."""
    table = pq.read_table(path)
    if "entry_id" not in table.column_names:
        return False
    mask = pc.fill_null(pc.is_in(table["entry_id"].combine_chunks(), value_set=expired), False)
    if not pc.any(mask).as_py():
        return False
    for column in columns:
        if column not in table.column_names:
            continue
        index = table.column_names.index(column)
        field = table.schema.field(index)
        values = table[column].combine_chunks()
        extension = isinstance(field.type, pa.BaseExtensionType)  # JSON: text stored as a string
        storage = values.storage if extension else values
        blanked = pc.if_else(mask, pa.scalar(FORGOTTEN[column], type=storage.type), storage)
        if extension:
            blanked = pa.ExtensionArray.from_storage(field.type, blanked)
        table = table.set_column(index, field, blanked)
    temporary = path.with_name(path.name + ".forgetting")
    pq.write_table(table, temporary, compression="zstd", write_statistics=False)
    os.replace(temporary, path)
    return True


def _expired_entry_ids(
    conn: duckdb.DuckDBPyConnection, today: date, retention_days: int, files: list[Path]
) -> pa.Array:
    """Entries whose period ended more than `retention_days` before `today`, in any version."""
    ids: set[str] = set()
    for path in files:
        rows = pq.read_table(path, columns=["entry_id", "period_end"])
        for entry_id, period_end in zip(
            rows["entry_id"].to_pylist(), rows["period_end"].to_pylist(), strict=True
        ):
            if entry_id and period_end and (today - period_end).days > retention_days:
                ids.add(entry_id)
    for inlined in _inlined_tables(conn, ENTRIES):
        for (entry_id,) in conn.execute(
            f"SELECT entry_id FROM {META}.{inlined} "
            "WHERE CAST(period_end AS DATE) + CAST(? AS INTEGER) < CAST(? AS DATE)",
            [retention_days, today],
        ).fetchall():
            ids.add(entry_id)
    return pa.array(sorted(ids), type=pa.string())


def _inlined_tables(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    names = []
    for table_id in _table_ids(conn, table):
        names += [
            name
            for (name,) in conn.execute(
                f"SELECT table_name FROM {META}.ducklake_inlined_data_tables WHERE table_id = ?",
                [table_id],
            ).fetchall()
        ]
    return names


def forget_expired_text(
    conn: duckdb.DuckDBPyConnection, today: date, retention_days: int
) -> ForgetReport:
    """Blank the text of every expired entry everywhere the lake keeps it (see module doc)."""
    entry_files = _files(conn, ENTRIES)
    expired = _expired_entry_ids(conn, today, retention_days, [p for _, p in entry_files])
    rewritten = blanked = 0
    if len(expired):
        for table, columns in DOCUMENT_TEXT.items():
            for file_id, path in entry_files if table == ENTRIES else _files(conn, table):
                if not _rewrite(path, expired, columns):
                    continue
                rewritten += 1
                if file_id is not None:
                    conn.execute(
                        f"UPDATE {META}.ducklake_data_file SET file_size_bytes = ?, "
                        "footer_size = ? WHERE data_file_id = ?",
                        [path.stat().st_size, _footer_size(path), file_id],
                    )
            marks = ", ".join("?" for _ in expired)
            for inlined in _inlined_tables(conn, table):
                sets = ", ".join(f"{c} = ?" for c in columns)
                blanked += conn.execute(
                    f"UPDATE {META}.{inlined} SET {sets} WHERE entry_id IN ({marks})",
                    [*(FORGOTTEN[c] for c in columns), *expired.to_pylist()],
                ).fetchall()[0][0]
    scrub_text_statistics(conn)
    if rewritten or blanked:
        _record_forgotten(conn, expired)
    if len(expired):
        vacuum_sqlite_catalog(conn)
    return ForgetReport(rewritten, blanked)


def _record_forgotten(conn: duckdb.DuckDBPyConnection, expired: pa.Array) -> None:
    """Note the pass in `knowledge.forgotten_entries`: a new snapshot, so no process goes on
    reading the rewritten files with the sizes it cached for the previous one."""
    ids = pa.table({"entry_id": expired})
    with registered(conn, _forgotten=ids):
        run_transaction(
            conn,
            lambda: conn.execute(
                "INSERT INTO knowledge.forgotten_entries SELECT entry_id, now() FROM _forgotten"
            ),
            what="record the forgotten overview entries",
        )


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
