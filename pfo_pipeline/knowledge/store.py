"""An overview document as a knowledge-space entry: its deterministic id, content hash, chunks and
expiry, stored through the ledger (`ledger.knowledge`, the only writer of the lake).

Entry ids are deterministic (tenant, period, period end), so re-materialising a partition replaces
its entry and chunks in one transaction instead of adding a duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import orjson

from pfo_pipeline.knowledge.chunking import chunk_markdown, count_tokens
from pfo_pipeline.knowledge.overview import Overview
from pfo_pipeline.knowledge.periods import expires_at, is_within_retention
from pfo_pipeline.ledger.knowledge import OverviewEntry, replace_overview_entry


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
