"""The knowledge space's 180-day retention: expired entries and their chunks deleted, and their
text forgotten everywhere the lake keeps it (every earlier snapshot, the catalog's statistics),
so time travel before the sweep shows that an entry existed, not what it said. Ids, periods and
dates stay; nothing else in the lake changes, so a query as of T on any other table is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pfo_pipeline.lake import registered, run_transaction
from pfo_pipeline.lake.forget import (
    TEXT_WITHOUT_STATISTICS,
    history_rows,
    rewrite_history,
    scrub_text_statistics,
    vacuum_sqlite_catalog,
)

SCHEMA = "knowledge"
ENTRIES = "financial_overview"
# What an expired overview's text becomes in the lake's history.
FORGOTTEN = {
    "markdown": "[forgotten: past the retention]",
    "summary": "{}",
    "content": "[forgotten: past the retention]",
}


@dataclass(frozen=True)
class SweepReport:
    entries_removed: int
    chunks_removed: int
    entry_ids: tuple[str, ...]
    history_files_rewritten: int = 0
    inlined_rows_blanked: int = 0


@dataclass(frozen=True)
class ForgetReport:
    files_rewritten: int
    inlined_rows_blanked: int


def sweep_expired(conn: duckdb.DuckDBPyConnection, today: date, retention_days: int) -> SweepReport:
    """Delete every entry past its retention and every chunk without a live entry, then forget
    their text in the lake's history and statistics (`forget_expired_text`); running it again
    removes nothing.

    Expiry is derived one way, from the period's end (`period_end + retention_days`), whatever
    `expires_at` a row carries (an older version or a hand edit may have stored another), and the
    stored `expires_at` of what remains is brought back to that rule. Chunks go with their entry,
    and chunks whose entry is gone (orphans) go too.
    """
    params = {"today": today, "days": retention_days}

    def work() -> SweepReport:
        expired = [
            e for (e,) in conn.execute(
                "SELECT entry_id FROM knowledge.financial_overview "
                "WHERE period_end + CAST($days AS INTEGER) < $today ORDER BY 1",
                params,
            ).fetchall()
        ]  # fmt: skip
        conn.execute(
            "DELETE FROM knowledge.financial_overview WHERE period_end + CAST($days AS INTEGER) < $today",
            params,
        )
        chunks = conn.execute(
            "DELETE FROM knowledge.financial_overview_chunks c WHERE NOT EXISTS "
            "(SELECT 1 FROM knowledge.financial_overview e WHERE e.entry_id = c.entry_id)"
        ).fetchall()[0][0]
        conn.execute(
            "UPDATE knowledge.financial_overview SET expires_at = period_end + CAST($days AS "
            "INTEGER) WHERE expires_at <> period_end + CAST($days AS INTEGER)",
            {"days": retention_days},
        )
        conn.execute(
            "UPDATE knowledge.financial_overview_chunks c SET expires_at = e.expires_at "
            "FROM knowledge.financial_overview e "
            "WHERE e.entry_id = c.entry_id AND c.expires_at <> e.expires_at"
        )
        return SweepReport(len(expired), chunks, tuple(expired))

    report = run_transaction(conn, work, what="sweep expired knowledge")
    # The rows are gone from the latest snapshot; their text goes from every earlier one too.
    forgotten = forget_expired_text(conn, today, retention_days)
    return SweepReport(
        report.entries_removed,
        report.chunks_removed,
        report.entry_ids,
        forgotten.files_rewritten,
        forgotten.inlined_rows_blanked,
    )


def forget_expired_text(
    conn: duckdb.DuckDBPyConnection, today: date, retention_days: int
) -> ForgetReport:
    """Blank the text of every expired entry (in any version) in every file and inlined row of
    the knowledge tables; recorded in `knowledge.forgotten_entries`."""
    rows = history_rows(conn, SCHEMA, ENTRIES, ["entry_id", "period_end"])
    ends = pc.cast(rows["period_end"], pa.date32())
    cutoff = pa.scalar(today - timedelta(days=retention_days), pa.date32())
    past = pc.fill_null(pc.less(ends, cutoff), False)
    ids = {entry_id for entry_id in pc.filter(rows["entry_id"], past).to_pylist() if entry_id}
    expired = pa.array(sorted(ids), pa.string())
    files = blanked = 0
    if len(expired):
        for (schema, table), columns in TEXT_WITHOUT_STATISTICS.items():
            replacements = {column: FORGOTTEN[column] for column in columns}
            done = rewrite_history(conn, schema, table, "entry_id", expired, replacements)
            files, blanked = files + done[0], blanked + done[1]
    scrub_text_statistics(conn)
    if files or blanked:
        _record_forgotten(conn, expired)
    if len(expired):
        vacuum_sqlite_catalog(conn)
    return ForgetReport(files, blanked)


def _record_forgotten(conn: duckdb.DuckDBPyConnection, expired: pa.Array) -> None:
    """Note the pass in `knowledge.forgotten_entries`: a new snapshot, so no process goes on
    reading the rewritten files with the sizes it cached for the previous one."""
    with registered(conn, _forgotten=pa.table({"entry_id": expired})):
        run_transaction(
            conn,
            lambda: conn.execute(
                "INSERT INTO knowledge.forgotten_entries SELECT entry_id, now() FROM _forgotten"
            ),
            what="record the forgotten overview entries",
        )
