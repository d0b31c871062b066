"""The balances load: one `current` snapshot per account, type and day (a later refresh the same
day replaces it), with its quarantine and load record in one commit. Powens keeps no balance
history: every day snapshotted is a day kept."""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from pfo_pipeline.lake import registered, run_transaction
from pfo_pipeline.ledger.columns import BALANCE_COLUMNS
from pfo_pipeline.ledger.loads import finish_load, record_snapshot
from pfo_pipeline.ledger.quarantine import settle_quarantine
from pfo_pipeline.ledger.types import LoadStats, Reject, SyncContext
from pfo_pipeline.ledger.upsert import upsert_rows


def apply_balances(
    conn: duckdb.DuckDBPyConnection,
    ctx: SyncContext,
    frame: pd.DataFrame,
    rejects: list[Reject],
    now: datetime,
) -> LoadStats:
    """One snapshot per account, type and day: a later refresh the same day replaces it."""
    loaded = pa.table(
        {
            "external_id": pa.array(
                [str(orjson.loads(m)["powens_account_id"]) for m in frame["metadata"]]
                if not frame.empty
                else [],
                pa.string(),
            )
        }
    )

    def work() -> LoadStats:
        stats = LoadStats(rows_in=len(frame) + len(rejects))
        updated, stats.inserted = upsert_rows(
            conn,
            "account_balances",
            frame,
            BALANCE_COLUMNS,
            [c for c in BALANCE_COLUMNS if c != "id"],
            ctx,
            now,
            has_updated_at=False,
        )
        stats.upserted = updated + stats.inserted
        stats.unchanged = len(frame) - stats.upserted
        settle_quarantine(
            conn, ctx, "balances", rejects, "SELECT external_id FROM _loaded_balances", stats, now
        )
        finish_load(conn, ctx.load_id, stats, now)
        return stats

    with registered(conn, _loaded_balances=loaded):
        stats = run_transaction(conn, work, what="commit the balances load")
    record_snapshot(conn, ctx.load_id)
    return stats
