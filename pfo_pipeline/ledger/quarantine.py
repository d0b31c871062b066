"""`ledger.quarantine`: records a load could not take, with their reasons and the record itself,
and their resolution once a later load takes them. A run never silently drops a row."""

from __future__ import annotations

import hashlib
from datetime import datetime

import duckdb
import orjson
import pyarrow as pa

from pfo_pipeline.lake import registered
from pfo_pipeline.ledger.types import LoadStats, Reject, SyncContext
from pfo_pipeline.sql_files import load_sql


def insert_quarantine(
    conn: duckdb.DuckDBPyConnection,
    ctx: SyncContext,
    stream: str,
    rejects: list[Reject],
    now: datetime,
) -> int:
    """Keyed by the record's content: the same bad record seen again is not a new row (but a
    resolved one that comes back is open again). Inside the load's commit; how many."""
    if not rejects:
        return 0
    rows: dict[str, list] = {"id": [], "external_id": [], "reasons": [], "record": [], "fault": []}
    for reject in rejects:
        record = orjson.dumps(reject.record, option=orjson.OPT_SORT_KEYS, default=str).decode()
        digest = hashlib.md5(
            f"{ctx.tenant_id}|{ctx.connection_id}|{stream}|{record}".encode(),
            usedforsecurity=False,
        ).hexdigest()
        rows["id"].append(f"qtn_{digest}")
        rows["external_id"].append(reject.external_id)
        rows["reasons"].append(orjson.dumps(list(reject.reasons)).decode())
        rows["record"].append(record)
        rows["fault"].append(reject.fault)
    with registered(conn, _quarantine_batch=pa.table(rows)):
        conn.execute(
            "UPDATE ledger.quarantine q SET resolved_at = NULL, resolved_by_load = NULL "
            "FROM _quarantine_batch b WHERE q.id = b.id AND q.resolved_at IS NOT NULL"
        )
        conn.execute(
            load_sql(__name__, "insert_quarantine"),
            {
                "load_id": ctx.load_id,
                "stream": stream,
                "tenant_id": ctx.tenant_id,
                "connection_id": ctx.connection_id,
                "now": now,
            },
        )
    return len(rejects)


def resolve_quarantine(
    conn: duckdb.DuckDBPyConnection, ctx: SyncContext, stream: str, loaded_sql: str, now: datetime
) -> int:
    """Mark open quarantine rows of this stream resolved when their record has now loaded; how
    many. `loaded_sql` selects the external ids this load wrote; it may use the statement's
    parameters (`$tenant_id`, `$stream`), never a value formatted in."""
    return conn.execute(
        "UPDATE ledger.quarantine SET resolved_at = $now, resolved_by_load = $load_id "
        "WHERE tenant_id = $tenant_id AND connection_id = $connection_id AND stream = $stream "
        f"AND resolved_at IS NULL AND external_id IN ({loaded_sql})",
        {
            "now": now,
            "load_id": ctx.load_id,
            "tenant_id": ctx.tenant_id,
            "connection_id": ctx.connection_id,
            "stream": stream,
        },
    ).fetchall()[0][0]


def settle_quarantine(
    conn: duckdb.DuckDBPyConnection,
    ctx: SyncContext,
    stream: str,
    rejects: list[Reject],
    loaded_ids_sql: str,
    stats: LoadStats,
    now: datetime,
) -> None:
    """A record load's quarantine: its rejects in, and rows it has now loaded (`loaded_ids_sql`
    yields their `external_id`) out, both counted in `stats`."""
    stats.quarantined = insert_quarantine(conn, ctx, stream, rejects, now)
    stats.quarantine_resolved = resolve_quarantine(conn, ctx, stream, loaded_ids_sql, now)
