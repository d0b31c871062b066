"""`openbanking.transactions.sync`: every transaction of the connection's accounts read from
Powens, mapped, categorised and validated batch by batch into the load's stage, then applied in
one commit (`ledger.transactions_commit`).

Incremental by default: Powens rows updated after (cursor - overlap), deleted ones included.
`full_refresh` re-reads the whole history; `backfill_days` / `min_date`..`max_date` re-read a date
window (and never move the cursor forward). The cursor commits with the rows it covers. Up to
`concurrency` page chains over date windows are read side by side (`transaction_fetch`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from pfo_pipeline.ledger.accounts_load import account_refs
from pfo_pipeline.ledger.cursors import overlap_start, read_cursor
from pfo_pipeline.ledger.loads import fail_load, start_load
from pfo_pipeline.ledger.transactions_commit import commit_transactions_load
from pfo_pipeline.ledger.transactions_stage import TransactionStage
from pfo_pipeline.ledger.types import AccountRef, LoadStats, SyncContext
from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.load_memory import (
    rare_collections,
    release_every_few_batches,
    release_freed_memory,
)
from pfo_pipeline.operations.sync_context import (
    PARIS,
    SyncLog,
    load_metadata,
    new_context,
    utc_now,
)
from pfo_pipeline.operations.transaction_batches import BatchStager, map_batch
from pfo_pipeline.operations.transaction_fetch import DEFAULT_FETCH_CONCURRENCY, TransactionFetch
from pfo_pipeline.powens.client import PAGE_LIMIT, PowensClient
from pfo_pipeline.powens.models import PowensTransaction

DEFAULT_OVERLAP = timedelta(hours=1)
# Rows mapped, validated and staged at a time: the sync's memory follows this, not the history.
# One batch is staged while the next is mapped (`BatchStager`): 20,000 rows keep a million-row
# Dagster run at 539 MB and a 5M-row one at 549 MB, 1.5 s faster a million rows than 12,000
# (measured 2026-12-08, once the page cycle no longer held pages: at 12,000, 513-529 MB). Each
# batch has fixed costs (10,000 rows: +4 s a million rows).
DEFAULT_BATCH_ROWS = 20_000
# A progress line in the run log for the first batch, then each time the rows pass a multiple of
# this: a line costs the sync's mapping thread ~19 ms (Dagster writes it to its event log), and
# one per batch was 1.6 s of a million-row sync.
PROGRESS_EVERY_ROWS = 50_000
POWENS_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class TransactionsSyncOptions:
    """How a transactions sync reads Powens (the run config's keys, `defs.ledger.sync_config`)."""

    full_refresh: bool = False
    backfill_days: int | None = None
    min_date: date | None = None
    max_date: date | None = None
    include_pending: bool = True
    overlap: timedelta = DEFAULT_OVERLAP
    batch_rows: int = DEFAULT_BATCH_ROWS
    page_size: int = PAGE_LIMIT
    concurrency: int = DEFAULT_FETCH_CONCURRENCY


@dataclass
class TransactionsSyncResult:
    synced: int
    failed: int
    load_id: str
    mode: str
    stats: LoadStats
    window_start: str | None
    window_end: str | None
    cursor_before: datetime | None
    cursor_after: datetime | None
    earliest_synced_at: date | None = None
    latest_synced_at: date | None = None
    next_since_token: str | None = None
    errors: list[str] = field(default_factory=list)
    # Rows of an account the ledger did not know made this load sync the accounts first.
    accounts_synced_first: bool = False

    def metadata(self) -> dict[str, Any]:
        """What the materialisation shows."""
        stats = self.stats
        return {
            **load_metadata(self.load_id, stats),
            "mode": self.mode,
            "twins_linked": stats.twins_linked,
            "duplicates_merged": stats.duplicates,
            "upstream_moved": stats.upstream_moved,
            "cursor_held": stats.cursor_held,
            "listing_moved_because": "; ".join(stats.shift_reasons[:5]) or "-",
            "accounts_synced_first": self.accounts_synced_first,
            "window_start": self.window_start or "-",
            "window_end": self.window_end or "-",
            "cursor_before": str(self.cursor_before) if self.cursor_before else "-",
            "cursor_after": str(self.cursor_after) if self.cursor_after else "-",
        }

    def telemetry(self) -> dict[str, Any]:
        """The `openbanking.transactions.synced` event's own properties."""
        return {
            "synced_count": self.synced,
            "failed_count": self.failed,
            "from": self.window_start,
            "to": self.window_end,
            "mode": self.mode,
            "cursor": self.next_since_token,
        }


class KnownAccounts:
    """The canonical accounts transactions map onto; a row of an account the ledger does not
    know yet (the bank added one and a webhook started this sync first) makes the load sync the
    accounts once, then map against them."""

    def __init__(
        self, conn: duckdb.DuckDBPyConnection, client: PowensClient, ctx: SyncContext
    ) -> None:
        self._conn, self._client, self._ctx = conn, client, ctx
        self.refs: dict[int, AccountRef] = account_refs(conn, ctx.tenant_id, ctx.connection_id)
        self.synced_first = False

    def cover(self, records: list[PowensTransaction], now: datetime) -> None:
        if self.synced_first or all(r.id_account in self.refs for r in records):
            return
        ctx = self._ctx
        sync_accounts(
            self._conn,
            self._client,
            new_context(ctx.tenant_id, ctx.connection_id, ctx.powens_user_id),
            now=now,
        )
        self.synced_first = True
        self.refs.update(account_refs(self._conn, ctx.tenant_id, ctx.connection_id))


def sync_transactions(
    conn: duckdb.DuckDBPyConnection,
    client: PowensClient,
    ctx: SyncContext,
    options: TransactionsSyncOptions | None = None,
    *,
    now: datetime | None = None,
    log: SyncLog | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> TransactionsSyncResult:
    """One transactions load of the tenant's connection (see the module's docstring).
    `on_batch(n)` runs after the n-th batch is staged (tests stop a load there)."""
    options = options or TransactionsSyncOptions()
    now = now or utc_now()
    cursor_before = read_cursor(conn, ctx.tenant_id, ctx.connection_id, "transactions")
    min_date = options.min_date
    if options.backfill_days is not None:
        min_date = now.astimezone(PARIS).date() - timedelta(days=options.backfill_days)
    windowed = min_date is not None or options.max_date is not None
    mode = "full" if options.full_refresh or cursor_before is None else "incremental"
    if windowed:
        mode = "backfill"
    since = overlap_start(cursor_before, options.overlap) if mode == "incremental" else None
    window = (
        (_day(min_date), _day(options.max_date))
        if windowed
        else (since.strftime(POWENS_TIME_FORMAT) if since else None, None)
    )
    start_load(conn, ctx, "transactions", mode, now)
    with rare_collections():
        try:
            accounts = KnownAccounts(conn, client, ctx)
            stage = TransactionStage(conn, ctx)
            stage.evidence.windowed = windowed  # a backfill never moves the cursor forward
            fetch = TransactionFetch(
                client,
                last_update=since,
                min_date=min_date,
                max_date=options.max_date,
                limit=options.page_size,
                concurrency=options.concurrency,
            )
            _report(log, f"transactions sync ({mode}): fetching from Powens")
            started, pages, rows, reported = time.monotonic(), 0, 0, 0
            with BatchStager(stage, on_batch or _nothing) as stager:
                for number, batch in enumerate(fetch.batches(options.batch_rows), start=1):
                    # On the lake's connection; the stager works on the stage's own one.
                    accounts.cover(batch.records, now)
                    pages += batch.pages
                    rows += len(batch)
                    mapped = map_batch(
                        stage, batch, accounts.refs, include_pending=options.include_pending
                    )
                    batch.records.clear()  # parsed rows go now, not when the next batch is full
                    stager.submit(number, mapped)
                    del mapped
                    release_every_few_batches(number)
                    if number == 1 or rows // PROGRESS_EVERY_ROWS > reported // PROGRESS_EVERY_ROWS:
                        _report(log, _progress(rows, pages, started, batch.total, fetch, options))
                        reported = rows
                stager.drain()
            stage.note_shift(fetch.shift_reasons)  # the first page, read again after the last
            release_freed_memory()
            _report(log, f"transactions sync: committing {stage.rows_in:,} rows in one commit")
            stats = commit_transactions_load(
                stage,
                now,
                cursor_before=cursor_before,
                window=window,
                incremental=mode == "incremental",
            )
            _report(
                log,
                f"transactions sync: committed ({stats.upserted:,} upserted, "
                f"{stats.quarantined:,} quarantined) in {time.monotonic() - started:.1f}s",
            )
        except Exception as exc:
            fail_load(conn, ctx.load_id, str(exc), utc_now())
            raise
    cursor_after = read_cursor(conn, ctx.tenant_id, ctx.connection_id, "transactions")
    first, last = conn.execute(
        "SELECT min(date), max(date) FROM ledger.bank_transactions WHERE load_id = ?",
        [ctx.load_id],
    ).fetchall()[0]
    return TransactionsSyncResult(
        synced=stats.rows_in - stats.quarantined - stats.duplicates,
        failed=stats.quarantined,
        load_id=ctx.load_id,
        mode=mode,
        stats=stats,
        window_start=window[0],
        window_end=window[1],
        cursor_before=cursor_before,
        cursor_after=cursor_after,
        earliest_synced_at=first,
        latest_synced_at=last,
        next_since_token=cursor_after.strftime(POWENS_TIME_FORMAT) if cursor_after else None,
        errors=[f"{r.external_id}: {'; '.join(r.reasons)}" for r in stage.rejects[:50]],
        accounts_synced_first=accounts.synced_first,
    )


def _nothing(number: int) -> None:
    """No `on_batch` hook."""


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _report(log: SyncLog | None, message: str) -> None:
    if log is not None:
        log.info(message)


def _progress(
    rows: int,
    pages: int,
    started: float,
    total: int | None,
    fetch: TransactionFetch,
    options: TransactionsSyncOptions,
) -> str:
    elapsed = max(time.monotonic() - started, 1e-9)
    return (
        f"transactions sync: fetched and validated {pages:,} pages, {rows:,} rows "
        f"({rows / elapsed:,.0f} rows/s)"
        + (f" of about {total:,}" if total else "")
        + (
            f"; {len(fetch.windows)} date windows, {options.concurrency} at a time"
            if fetch.windows
            else ""
        )
    )
