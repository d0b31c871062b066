"""Bring a ledger written by the DuckDB-file version into the lake, idempotently.

Rows are copied by set difference on the columns both sides have (a second run copies nothing),
then verified: every row of the file must be in the lake. Columns the file predates get the
values the old version implied (a quarantine row was always the record's own fault).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from pfo_pipeline.lake.transactions import LAKE, run_transaction

SOURCE = "pfo_file_ledger"
TABLES = (
    "ledger.bank_accounts",
    "ledger.account_aliases",
    "ledger.bank_transactions",
    "ledger.account_balances",
    "ledger.quarantine",
    "ledger.loads",
    "ledger.sync_cursors",
    "ledger.category_overrides",
    "ledger.connection_health",
    "knowledge.financial_overview",
    "knowledge.financial_overview_chunks",
    "telemetry.events",
)
IMPLIED = {"ledger.quarantine": {"fault": "'record'"}}
# Rows copied into these bypass the loads that incremental transfer pairing and twin linking
# scope themselves from: every tenant's next pairing and linking read the whole history again.
DERIVATION_INPUTS = {
    "ledger.bank_accounts",
    "ledger.bank_transactions",
    "ledger.category_overrides",
}
DERIVATION_RECORDS = ("ledger.transfer_pairings", "ledger.twin_linkings")


@dataclass(frozen=True)
class TableCopy:
    table: str
    source_rows: int
    copied: int
    missing: int


def _columns(conn: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        c
        for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
            "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [catalog, schema, name],
        ).fetchall()
    ]


def copy_duckdb_file(conn: duckdb.DuckDBPyConnection, source: Path) -> list[TableCopy]:
    conn.execute(
        f"ATTACH '{str(source.resolve()).replace(chr(39), chr(39) * 2)}' AS {SOURCE} (READ_ONLY)"
    )
    try:
        reports = []
        for table in TABLES:
            source_columns = _columns(conn, SOURCE, table)
            if not source_columns:
                continue  # the file never had this table
            lake_columns = _columns(conn, LAKE, table)
            common = [c for c in lake_columns if c in source_columns]
            implied = {c: v for c, v in IMPLIED.get(table, {}).items() if c not in source_columns}
            cols = ", ".join(common + list(implied))
            values = ", ".join(common + list(implied.values()))
            key = ", ".join(common)
            difference = (
                f"SELECT {key} FROM {SOURCE}.{table} EXCEPT SELECT {key} FROM {LAKE}.{table}"
            )

            insert = f"INSERT INTO {LAKE}.{table} ({cols}) SELECT {values} FROM ({difference}) s"

            def copy(sql: str = insert, table: str = table) -> int:
                copied = conn.execute(sql).fetchall()[0][0]
                if copied and table in DERIVATION_INPUTS:
                    for record in DERIVATION_RECORDS:
                        conn.execute(f"DELETE FROM {LAKE}.{record}")
                return copied

            copied = run_transaction(conn, copy, what=f"copy {table}")
            source_rows = conn.execute(f"SELECT count(*) FROM {SOURCE}.{table}").fetchall()[0][0]
            missing = conn.execute(f"SELECT count(*) FROM ({difference})").fetchall()[0][0]
            reports.append(TableCopy(table, source_rows, copied, missing))
        return reports
    finally:
        conn.execute(f"DETACH {SOURCE}")
