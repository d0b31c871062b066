"""An overview document as a knowledge-space entry (`knowledge.financial_overview` and its
chunks): its deterministic id, content hash, chunks and expiry, written through the lake (one
transaction per entry, `lake.run_transaction`).

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
from pfo_pipeline.lake import registered, run_transaction
from pfo_pipeline.lake.forget import scrub_text_statistics
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
class WriteResult:
    entry_id: str
    chunk_count: int
    replaced: bool
    content_hash: str


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
    summary_json = orjson.dumps(overview.summary, option=orjson.OPT_SORT_KEYS).decode()
    entry = OverviewEntry(
        entry_id=entry_id_for(request.tenant_id, request.period, overview.period_end),
        tenant_id=request.tenant_id,
        period=request.period,
        period_start=overview.period_start,
        period_end=overview.period_end,
        generated_at=generated_at,
        expires_at=expires_at(overview.period_end),
        content_hash=hashlib.sha256((overview.markdown + summary_json).encode()).hexdigest(),
        markdown=overview.markdown,
        summary_json=summary_json,
    )
    chunks = [(text, count_tokens(text)) for text in chunk_markdown(overview.markdown)]
    replaced = replace_overview_entry(conn, entry, chunks)
    return WriteResult(entry.entry_id, len(chunks), replaced, entry.content_hash)


def replace_overview_entry(
    conn: duckdb.DuckDBPyConnection, entry: OverviewEntry, chunks: list[tuple[str, int]]
) -> bool:
    """Store the entry and its chunks (text, token count), replacing any earlier entry of the
    same id and its chunks in one transaction; whether one existed."""
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
