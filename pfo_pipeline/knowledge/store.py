"""The knowledge space in DuckDB: overview entries, their chunks, and the 180-day retention.

Entry ids are deterministic (tenant, period, period end), so re-materialising a partition replaces
its entry and chunks in one transaction instead of adding a duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import orjson
import pyarrow as pa

from pfo_pipeline.knowledge.chunking import chunk_markdown, count_tokens
from pfo_pipeline.knowledge.overview import Overview
from pfo_pipeline.knowledge.periods import expires_at, is_within_retention
from pfo_pipeline.ledger.lake import registered, run_transaction
from pfo_pipeline.ledger.schema import migrate


@dataclass(frozen=True)
class WriteResult:
    entry_id: str
    chunk_count: int
    replaced: bool
    content_hash: str


@dataclass(frozen=True)
class SweepReport:
    entries_removed: int
    chunks_removed: int
    entry_ids: tuple[str, ...]


def ensure_knowledge_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """The knowledge tables are lake migrations (`ledger.schema`): apply any pending."""
    migrate(conn)


def entry_id_for(tenant_id: str, period: str, period_end: date) -> str:
    return hashlib.sha256(f"{tenant_id}|{period}|{period_end.isoformat()}".encode()).hexdigest()[
        :32
    ]


def write_overview(
    conn: duckdb.DuckDBPyConnection, overview: Overview, generated_at: datetime
) -> WriteResult:
    """Replace the entry of this tenant, period and end day (and its chunks) atomically."""
    request = overview.request
    if not is_within_retention(overview.period_end, generated_at.date()):
        raise ValueError(
            f"period_end {overview.period_end} is past the 180-day retention; not written"
        )
    ensure_knowledge_schema(conn)
    entry_id = entry_id_for(request.tenant_id, request.period, overview.period_end)
    summary_json = orjson.dumps(overview.summary, option=orjson.OPT_SORT_KEYS).decode()
    content_hash = hashlib.sha256((overview.markdown + summary_json).encode()).hexdigest()
    chunks = chunk_markdown(overview.markdown)
    expiry = expires_at(overview.period_end)
    chunk_table = pa.table(
        {
            "chunk_index": list(range(len(chunks))),
            "content": chunks,
            "token_count": [count_tokens(text) for text in chunks],
        }
    )

    def work() -> int:
        existed = conn.execute(
            "SELECT count(*) FROM knowledge.financial_overview WHERE entry_id = ?", [entry_id]
        ).fetchall()[0][0]
        conn.execute(
            "DELETE FROM knowledge.financial_overview_chunks WHERE entry_id = ?", [entry_id]
        )
        conn.execute("DELETE FROM knowledge.financial_overview WHERE entry_id = ?", [entry_id])
        conn.execute(
            "INSERT INTO knowledge.financial_overview VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [entry_id, request.tenant_id, request.period, overview.period_start, overview.period_end,
             generated_at, expiry, content_hash, overview.markdown, summary_json],
        )  # fmt: skip
        conn.execute(
            "INSERT INTO knowledge.financial_overview_chunks SELECT "
            "? || '-' || lpad(CAST(chunk_index AS VARCHAR), 3, '0'), ?, ?, chunk_index, content, "
            "token_count, ? FROM _chunks",
            [entry_id, entry_id, request.tenant_id, expiry],
        )
        return existed

    with registered(conn, _chunks=chunk_table):
        existed = run_transaction(conn, work, what="write the overview")
    return WriteResult(entry_id, len(chunks), bool(existed), content_hash)


def sweep_expired(conn: duckdb.DuckDBPyConnection, today: date) -> SweepReport:
    """Delete entries (and chunks) whose expiry has passed; running it again removes nothing."""
    ensure_knowledge_schema(conn)

    def work() -> SweepReport:
        expired = [
            e for (e,) in conn.execute(
                "SELECT entry_id FROM knowledge.financial_overview WHERE expires_at < ? ORDER BY 1",
                [today],
            ).fetchall()
        ]  # fmt: skip
        chunks = conn.execute(
            "DELETE FROM knowledge.financial_overview_chunks WHERE expires_at < ? "
            "OR list_contains(?, entry_id)",
            [today, expired],
        ).fetchall()[0][0]
        conn.execute("DELETE FROM knowledge.financial_overview WHERE expires_at < ?", [today])
        return SweepReport(len(expired), chunks, tuple(expired))

    return run_transaction(conn, work, what="sweep expired knowledge")
