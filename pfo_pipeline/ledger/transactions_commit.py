"""A transactions load's one commit: the staged rows merged into the ledger, then in the same
lake transaction everything derived from them (re-issued twins linked, internal transfers
paired, the user's category overrides applied), the quarantine (and what this load resolved),
the cursor and the load record. All of it or nothing: a crash before the commit leaves ledger
and cursor as they were, so a re-run converges to the same state; a commit conflict with another
writer re-runs the whole transaction from a fresh snapshot (`lake.run_transaction`).

An incremental load derives only from the days its rows were on, before and after (what it can
have changed); a full or backfill load from the whole history (`transfers`, `twins` say why
that is exact).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from pfo_pipeline.lake import one_thread, run_transaction
from pfo_pipeline.ledger.cursors import set_cursor
from pfo_pipeline.ledger.loads import finish_load, record_snapshot
from pfo_pipeline.ledger.overrides import apply_category_overrides
from pfo_pipeline.ledger.quarantine import insert_quarantine, resolve_quarantine
from pfo_pipeline.ledger.transactions_merge import merge_all, merge_changes
from pfo_pipeline.ledger.transactions_stage import TransactionStage
from pfo_pipeline.ledger.transfers import mark_internal_transfers
from pfo_pipeline.ledger.twins import link_reissued_twins
from pfo_pipeline.ledger.types import LoadStats


def commit_transactions_load(
    stage: TransactionStage,
    now: datetime,
    *,
    cursor_before: datetime | None,
    window: tuple[str | None, str | None],
    incremental: bool,
) -> LoadStats:
    """Apply the whole staged load atomically; the stage is closed whatever happens."""
    conn, ctx = stage.conn, stage.ctx
    try:
        staged, distinct = stage.newest_copies()
        cursor_after = stage.next_cursor(cursor_before)

        def work() -> LoadStats:
            """Runs again from a fresh snapshot if another writer commits first."""
            stats = _stats_of(stage)
            if incremental:
                updated, changed_days = merge_changes(conn, now, ctx.load_id, staged, stats)
            else:
                updated, changed_days = merge_all(conn, now, ctx.load_id, staged, stats), None
            stats.upserted = updated + stats.inserted
            stats.unchanged = distinct - stats.upserted
            stats.twins_linked = link_reissued_twins(conn, ctx.tenant_id, changed_days)
            mark_internal_transfers(conn, ctx.tenant_id, changed_days)
            apply_category_overrides(conn, ctx.tenant_id)  # a tenant's few: every one, every load
            stats.quarantined = insert_quarantine(conn, ctx, "transactions", stage.rejects, now)
            stats.quarantine_resolved = _resolve_loaded(conn, stage, staged, now)
            set_cursor(conn, ctx, "transactions", cursor_after)
            finish_load(
                conn, ctx.load_id, stats, now, window=window, cursor=(cursor_before, cursor_after)
            )
            return stats

        with one_thread(conn):  # the commit's memory peak (lake.one_thread says why)
            stats = run_transaction(conn, work, what="commit the transactions load")
    finally:
        stage.close()
    record_snapshot(conn, ctx.load_id)
    return stats


def _stats_of(stage: TransactionStage) -> LoadStats:
    shifted = stage.evidence.shifts > 0
    return LoadStats(
        rows_in=stage.rows_in,
        held_back=stage.held_back,
        duplicates=stage.duplicates,
        upstream_moved=shifted,
        cursor_held=shifted,
        shift_reasons=list(stage.evidence.shift_reasons),
    )


def _resolve_loaded(
    conn: duckdb.DuckDBPyConnection, stage: TransactionStage, staged: str, now: datetime
) -> int:
    """Open quarantine rows whose record this load wrote: only open rows are looked up in the
    stage (a join on the few, not a set of every staged id)."""
    return resolve_quarantine(
        conn,
        stage.ctx,
        "transactions",
        f"SELECT s.external_id FROM {staged} s SEMI JOIN ledger.quarantine q "
        "ON q.external_id = s.external_id AND q.resolved_at IS NULL "
        "AND q.stream = $stream AND q.tenant_id = $tenant_id",
        now,
    )
