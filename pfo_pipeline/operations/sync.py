"""The sync commands of the original design (`accounts.sync`, `transactions.sync`,
`balances.refresh`): Powens client -> mapping -> validation -> ledger, one load each.

They take an open ledger connection (the caller owns the single writer) and a Powens client, and
return typed results mirroring the original contracts' outputs, plus the load statistics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb

from pfo_pipeline.categoriser import categorise_frame
from pfo_pipeline.ledger import store
from pfo_pipeline.ledger.mapping import (
    map_accounts,
    map_balances,
    map_transactions,
    resolve_accounts,
)
from pfo_pipeline.ledger.overrides import apply_category_overrides
from pfo_pipeline.ledger.records import (
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
)
from pfo_pipeline.ledger.schema import migrate
from pfo_pipeline.ledger.transfers import mark_internal_transfers
from pfo_pipeline.ledger.types import (
    FAULT_HELD_BACK,
    FAULT_RECORD,
    LoadStats,
    Reject,
    SyncContext,
)
from pfo_pipeline.ledger.validation import validate_batch
from pfo_pipeline.operations.load_memory import (
    collect_batch_garbage,
    rare_collections,
    release_freed_memory,
)
from pfo_pipeline.operations.transaction_fetch import (
    DEFAULT_FETCH_CONCURRENCY,
    TransactionBatch,
    TransactionFetch,
)
from pfo_pipeline.powens.client import PAGE_LIMIT, PowensClient
from pfo_pipeline.powens.errors import PowensInvalidResponseError, PowensParseError
from pfo_pipeline.powens.models import PowensAccount, PowensConnector, PowensTransaction
from pfo_pipeline.powens.record_parsing import parse_account, parse_connection

PARIS = ZoneInfo("Europe/Paris")
DEFAULT_OVERLAP = timedelta(hours=1)
# Rows mapped, validated and staged at a time: the sync's memory follows this, not the history.
DEFAULT_BATCH_ROWS = 50_000


def utc_now() -> datetime:
    return datetime.now(ZoneInfo("UTC"))


def new_context(tenant_id: str, connection_id: str, powens_user_id: int | str) -> SyncContext:
    return SyncContext(tenant_id, connection_id, str(powens_user_id), f"load_{uuid.uuid4().hex}")


@dataclass
class AccountsSyncResult:
    synced: int
    failed: int
    load_id: str
    stats: LoadStats
    errors: list[str] = field(default_factory=list)
    next_sync_suggested_at: datetime | None = None


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


@dataclass
class BalancesRefreshResult:
    refreshed: int
    failed: int
    load_id: str
    as_of_date: date
    refreshed_at: datetime
    stats: LoadStats
    errors: list[str] = field(default_factory=list)


def _parse_accounts(raw_accounts: list) -> tuple[list[PowensAccount], list[Reject]]:
    accounts, rejects = [], []
    for raw in raw_accounts:
        try:
            accounts.append(parse_account(raw))
        except PowensParseError as exc:
            external = raw.get("id") if isinstance(raw, dict) else None
            rejects.append(
                Reject(str(external) if external is not None else None, (str(exc),), raw)
            )
    return accounts, rejects


def _connectors(raw_connections: list[dict]) -> dict[int, PowensConnector]:
    """Each connection's connector; a malformed connection fails the call, as Powens broke
    its own contract."""
    connectors = {}
    for raw in raw_connections:
        try:
            connection = parse_connection(raw)
        except PowensParseError as exc:
            raise PowensInvalidResponseError(
                f"malformed record ({exc})", operation="list connections"
            ) from None
        if connection.connector:
            connectors[connection.id] = connection.connector
    return connectors


def _resolve(conn: duckdb.DuckDBPyConnection, ctx: SyncContext, accounts: list[PowensAccount]):
    aliases, identities = store.known_account_identities(conn, ctx.tenant_id, ctx.connection_id)
    return resolve_accounts(accounts, ctx, aliases, identities)


def sync_accounts(
    conn: duckdb.DuckDBPyConnection,
    client: PowensClient,
    ctx: SyncContext,
    *,
    polling_interval: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> AccountsSyncResult:
    """`openbanking.accounts.sync`: reconcile account metadata before transactions/balances."""
    now = now or utc_now()
    migrate(conn)
    store.start_load(conn, ctx, "accounts", "full", now)
    try:
        connectors = _connectors(client.list_connections())
        accounts, rejects = _parse_accounts(client.list_accounts(include_disabled=True))
        resolution = _resolve(conn, ctx, accounts)
        frame = map_accounts(resolution, connectors, ctx)
        valid, invalid = validate_batch(BankAccountRecord, frame)
        rejects += invalid
        stats = store.apply_accounts(conn, ctx, valid, resolution.new_aliases, rejects, now)
    except Exception as exc:
        store.fail_load(conn, ctx.load_id, str(exc), utc_now())
        raise
    return AccountsSyncResult(
        synced=len(valid),
        failed=len(rejects),
        load_id=ctx.load_id,
        stats=stats,
        errors=[f"{r.external_id}: {'; '.join(r.reasons)}" for r in rejects],
        next_sync_suggested_at=now + polling_interval,
    )


def sync_transactions(
    conn: duckdb.DuckDBPyConnection,
    client: PowensClient,
    ctx: SyncContext,
    *,
    full_refresh: bool = False,
    backfill_days: int | None = None,
    min_date: date | None = None,
    max_date: date | None = None,
    include_pending: bool = True,
    overlap: timedelta = DEFAULT_OVERLAP,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    page_size: int = PAGE_LIMIT,
    concurrency: int = DEFAULT_FETCH_CONCURRENCY,
    now: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TransactionsSyncResult:
    """`openbanking.transactions.sync` for all of the connection's accounts.

    Incremental by default: Powens rows updated after (cursor - overlap), deleted ones included.
    `full_refresh` re-reads the whole history; `backfill_days` / `min_date`..`max_date` re-read a
    date window. The cursor only moves forward and commits with the rows it covers. Up to
    `concurrency` page chains over date windows are read side by side (`transaction_fetch`).
    """
    now = now or utc_now()
    migrate(conn)
    cursor_before = store.read_cursor(conn, ctx.tenant_id, ctx.connection_id, "transactions")
    if backfill_days is not None:
        min_date = (now.astimezone(PARIS).date()) - timedelta(days=backfill_days)
    windowed = min_date is not None or max_date is not None
    mode = "full" if full_refresh or cursor_before is None else "incremental"
    if windowed:
        mode = "backfill"
    since = None if mode != "incremental" else store.overlap_start(cursor_before, overlap)
    window = (
        (min_date.isoformat() if min_date else None, max_date.isoformat() if max_date else None)
        if windowed
        else (since.strftime("%Y-%m-%d %H:%M:%S") if since else None, None)
    )
    store.start_load(conn, ctx, "transactions", mode, now)
    with rare_collections():
        try:
            refs = store.account_refs(conn, ctx.tenant_id, ctx.connection_id)
            accounts_synced: list[AccountsSyncResult] = []

            def learn_accounts(records: list[PowensTransaction]) -> None:
                """A row of an account the ledger does not know (the bank added one and a webhook
                started this sync first): sync the accounts once, then map against them."""
                if accounts_synced or all(r.id_account in refs for r in records):
                    return
                accounts_ctx = new_context(ctx.tenant_id, ctx.connection_id, ctx.powens_user_id)
                accounts_synced.append(sync_accounts(conn, client, accounts_ctx, now=now))
                refs.update(store.account_refs(conn, ctx.tenant_id, ctx.connection_id))

            stage = store.TransactionStage(conn, ctx)
            stage.evidence.windowed = windowed  # a backfill never moves the cursor forward
            fetch = TransactionFetch(
                client,
                last_update=since,
                min_date=min_date,
                max_date=max_date,
                limit=page_size,
                concurrency=concurrency,
            )
            report = progress or (lambda _message: None)
            report(f"transactions sync ({mode}): fetching from Powens")
            fetch_started, pages = time.monotonic(), 0
            for number, batch in enumerate(fetch.batches(batch_rows), start=1):
                learn_accounts(batch.records)
                _stage_batch(stage, batch, ctx, refs, include_pending)
                collect_batch_garbage()
                pages += batch.pages
                elapsed = max(time.monotonic() - fetch_started, 1e-9)
                report(
                    f"transactions sync: fetched and validated {pages:,} pages, {stage.rows_in:,} rows "
                    f"({stage.rows_in / elapsed:,.0f} rows/s)"
                    + (f" of about {batch.total:,}" if batch.total else "")
                    + (
                        f"; {len(fetch.windows)} date windows, {concurrency} at a time"
                        if fetch.windows
                        else ""
                    )
                )
                if on_batch is not None:
                    on_batch(number)
            stage.note_shift(fetch.shift_reasons)  # the first page, read again after the last
            release_freed_memory()
            post_merge = [mark_internal_transfers, _apply_overrides]
            report(f"transactions sync: committing {stage.rows_in:,} rows in one lake transaction")
            stats = stage.commit(
                now,
                cursor_before=cursor_before,
                window=window,
                post_merge=post_merge,
                incremental=mode == "incremental",
            )
            report(
                f"transactions sync: committed ({stats.upserted:,} upserted, "
                f"{stats.quarantined:,} quarantined) in {time.monotonic() - fetch_started:.1f}s"
            )
        except Exception as exc:
            store.fail_load(conn, ctx.load_id, str(exc), utc_now())
            raise
    cursor_after = store.read_cursor(conn, ctx.tenant_id, ctx.connection_id, "transactions")
    dates = conn.execute(
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
        earliest_synced_at=dates[0],
        latest_synced_at=dates[1],
        next_since_token=cursor_after.strftime("%Y-%m-%d %H:%M:%S") if cursor_after else None,
        errors=[f"{r.external_id}: {'; '.join(r.reasons)}" for r in stage.rejects[:50]],
        accounts_synced_first=bool(accounts_synced),
    )


def _apply_overrides(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, _changed_days: list[date] | None
) -> int:
    """The tenant's overrides are few: every one is re-applied, whatever the load changed."""
    return apply_category_overrides(conn, tenant_id)


def _stage_batch(
    stage: store.TransactionStage,
    batch: TransactionBatch,
    ctx: SyncContext,
    refs: dict,
    include_pending: bool,
) -> None:
    records, duplicates, moved = newest_copies(batch.records)
    # Each chain's `total`s and dates were read by its `ChainWatch`; the stage gets the verdict.
    stage.note_pages(batch.first_server_time, duplicates, moved)
    stage.note_shift(batch.shift_reasons)
    if not include_pending:
        records = [r for r in records if not r.coming or r.deleted is not None]
    frame, rejects = map_transactions(records, ctx, refs, categorise_frame)
    stage.note_held_back(
        [r.last_update for r in records if r.id_account not in refs]  # rejected as held back
    )
    # A null `value` is an incomplete row, not a malformed one: held back and read again.
    rejects += [
        Reject(r.external_id, (r.reason,), r.raw, FAULT_HELD_BACK if r.held else FAULT_RECORD)
        for r in batch.rejects
    ]
    stage.note_held_back([r.last_update for r in batch.rejects if r.held])
    valid, invalid = validate_batch(BankTransactionRecord, frame)
    stage.note_watermark(max((r.last_update for r in records if r.last_update), default=None))
    stage.add(valid, rejects + invalid, raw_rows=len(batch))


def newest_copies(
    records: list[PowensTransaction],
) -> tuple[list[PowensTransaction], int, int]:
    """One copy per Powens id: the newest by `last_update`, on a tie the one served last.

    Offset pages repeat a row when Powens' data moves while we page; a repeat is not an error of
    the record. Returns the kept records (in served order), how many copies were dropped, and how
    many ids came as two different versions (the row itself moved while we paged).
    """
    if len({record.id for record in records}) == len(records):
        return records, 0, 0  # the usual case: no copies, nothing to choose
    newest: dict[int, int] = {}
    versions: set[int] = set()
    for position, record in enumerate(records):
        seen = newest.get(record.id)
        if seen is not None:
            earlier = records[seen]
            if earlier.last_update != record.last_update:
                versions.add(record.id)
            if earlier.last_update is not None and (
                record.last_update is None or record.last_update < earlier.last_update
            ):
                continue
        newest[record.id] = position
    if len(newest) == len(records):
        return records, 0, 0
    kept = sorted(newest.values())
    return [records[i] for i in kept], len(records) - len(kept), len(versions)


def refresh_balances(
    conn: duckdb.DuckDBPyConnection,
    client: PowensClient,
    ctx: SyncContext,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> BalancesRefreshResult:
    """`openbanking.balances.refresh`: a snapshot of every live account's balance, dated by
    Powens' last sync of the account (`as_of` is the fallback for accounts it never synced)."""
    now = now or utc_now()
    as_of = as_of or now.astimezone(PARIS).date()
    migrate(conn)
    store.start_load(conn, ctx, "balances", "snapshot", now)
    try:
        accounts, rejects = _parse_accounts(client.list_accounts(include_disabled=True))
        resolution = _resolve(conn, ctx, accounts)
        known = _known_account_ids(conn, ctx)
        unknown = [a for a in accounts if resolution.by_powens_id[a.id] not in known]
        if unknown:
            # Balances need canonical accounts; an account the accounts sync has not seen yet is
            # quarantined rather than invented here.
            rejects += [
                Reject(
                    str(a.id),
                    ("account_id: account not synced yet; held back until the accounts sync",),
                    {"id": a.id},
                    FAULT_HELD_BACK,
                )
                for a in unknown
            ]
            for account in unknown:
                resolution.representatives.pop(resolution.by_powens_id[account.id], None)
        frame, balance_rejects = map_balances(resolution, ctx, as_of)
        valid, invalid = validate_batch(AccountBalanceRecord, frame)
        rejects += balance_rejects + invalid
        stats = store.apply_balances(conn, ctx, valid, rejects, now)
    except Exception as exc:
        store.fail_load(conn, ctx.load_id, str(exc), utc_now())
        raise
    days = [d for d in valid["as_of_date"]] if not valid.empty else []
    return BalancesRefreshResult(
        refreshed=len(valid),
        failed=len(rejects),
        load_id=ctx.load_id,
        as_of_date=max(days) if days else as_of,
        refreshed_at=now,
        stats=stats,
        errors=[f"{r.external_id}: {'; '.join(r.reasons)}" for r in rejects],
    )


def _known_account_ids(conn: duckdb.DuckDBPyConnection, ctx: SyncContext) -> set[str]:
    """Canonical accounts the accounts sync has already written for this connection."""
    aliases, _ = store.known_account_identities(conn, ctx.tenant_id, ctx.connection_id)
    return set(aliases.values())
