"""The knowledge space's tables (`knowledge.financial_overview` and its chunks): replacing an
entry atomically and the 180-day retention sweep. What an entry says is the knowledge package's
business; this module only keeps the rows consistent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pyarrow as pa

from pfo_pipeline.ledger.knowledge_history import forget_expired_text, scrub_text_statistics
from pfo_pipeline.ledger.lake import registered, run_transaction
from pfo_pipeline.ledger.schema import migrate
from pfo_pipeline.sql_files import load_sql


@dataclass(frozen=True)
class OverviewEntry:
    """One row of `knowledge.financial_overview`, ready to store."""

    entry_id: str
    tenant_id: str
    period: str
    period_start: date
    period_end: date
    generated_at: datetime
    expires_at: date
    content_hash: str
    markdown: str
    summary_json: str


@dataclass(frozen=True)
class SweepReport:
    entries_removed: int
    chunks_removed: int
    entry_ids: tuple[str, ...]
    history_files_rewritten: int = 0
    inlined_rows_blanked: int = 0


def ensure_knowledge_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """The knowledge tables are lake migrations (`ledger.schema`): apply any pending."""
    migrate(conn)


def replace_overview_entry(
    conn: duckdb.DuckDBPyConnection, entry: OverviewEntry, chunks: list[tuple[str, int]]
) -> bool:
    """Store the entry and its chunks (text, token count), replacing any earlier entry of the
    same id and its chunks in one transaction; whether one existed."""
    ensure_knowledge_schema(conn)
    chunk_table = pa.table(
        {
            "chunk_index": list(range(len(chunks))),
            "content": [text for text, _ in chunks],
            "token_count": [tokens for _, tokens in chunks],
        },
        schema=pa.schema(
            [("chunk_index", pa.int64()), ("content", pa.string()), ("token_count", pa.int64())]
        ),
    )
    key = [entry.entry_id]

    def work() -> bool:
        existed = conn.execute(
            "SELECT count(*) FROM knowledge.financial_overview WHERE entry_id = ?", key
        ).fetchall()[0][0]
        conn.execute("DELETE FROM knowledge.financial_overview_chunks WHERE entry_id = ?", key)
        conn.execute("DELETE FROM knowledge.financial_overview WHERE entry_id = ?", key)
        conn.execute(
            "INSERT INTO knowledge.financial_overview VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [entry.entry_id, entry.tenant_id, entry.period, entry.period_start, entry.period_end,
             entry.generated_at, entry.expires_at, entry.content_hash, entry.markdown,
             entry.summary_json],
        )  # fmt: skip
        conn.execute(
            load_sql(__name__, "insert_overview_chunks"),
            {
                "entry_id": entry.entry_id,
                "tenant_id": entry.tenant_id,
                "expires_at": entry.expires_at,
            },
        )
        return bool(existed)

    with registered(conn, _chunks=chunk_table):
        existed = run_transaction(conn, work, what="write the overview")
    scrub_text_statistics(conn)  # the catalog keeps no min/max of what an overview says
    return existed


def sweep_expired(conn: duckdb.DuckDBPyConnection, today: date, retention_days: int) -> SweepReport:
    """Delete every entry past its retention and every chunk without a live entry, then forget
    their text in the lake's history and statistics (`knowledge_history`); running it again
    removes nothing.

    Expiry is derived one way, from the period's end (`period_end + retention_days`), whatever
    `expires_at` a row carries (an older version or a hand edit may have stored another), and the
    stored `expires_at` of what remains is brought back to that rule. Chunks go with their entry,
    and chunks whose entry is gone (orphans) go too.
    """
    ensure_knowledge_schema(conn)
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
