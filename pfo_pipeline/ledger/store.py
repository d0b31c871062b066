"""Every write to the ledger goes through here: bulk Arrow upserts, tombstones, twins, cursors.

A load stages its validated batches in local Parquet files (no lock, no open write transaction while it
fetches), then applies them in ONE lake transaction together with the quarantine rows, the
incremental cursor and the load record; a commit conflict with another writer re-runs that
transaction from a fresh snapshot (`lake.run_transaction`). A crash before the commit leaves the
ledger and cursor exactly as they were, so a re-run converges to the same state. DuckLake has no
keys: every statement here keeps ids unique itself (update what exists, insert what does not).
Rows are only rewritten when their content hash changes: a re-run with no upstream change leaves
every ledger table's content equal.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
import weakref
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from pfo_pipeline.ledger.cursor_rule import CursorEvidence, next_cursor
from pfo_pipeline.ledger.lake import LAKE, last_snapshot, registered, run_transaction
from pfo_pipeline.ledger.records import (
    VALIDATION_ONLY,
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
    record_columns,
)
from pfo_pipeline.ledger.stage_file import (
    STAGE_PREFIX,
    create_stage_table,
    read_stage_batches,
    write_stage_batch,
)
from pfo_pipeline.ledger.stage_folder import StageFolder, new_stage_folder
from pfo_pipeline.ledger.twins import link_reissued_twins
from pfo_pipeline.ledger.types import AccountRef, LoadStats, Reject, SyncContext
from pfo_pipeline.sql_files import load_sql

TRANSACTION_COLUMNS = [c for c in record_columns(BankTransactionRecord) if c not in VALIDATION_ONLY]
# What Powens owns: a change in any of these is an upstream edit worth a new version of the row.
# (Categories are ours: rules, transfers and user overrides change them, not Powens.)
_TRANSACTION_HASHED = [
    c
    for c in TRANSACTION_COLUMNS
    if c not in ("id", "tenant_id", "connection_id", "external_id", "standardized_category")
    and c not in ("category_source", "booked_at")
]
ACCOUNT_COLUMNS = record_columns(BankAccountRecord)
# Staged rows whose ids are grouped at a time when looking for copies across batches.
HASH_GROUP_ROWS = 250_000
BALANCE_COLUMNS = record_columns(AccountBalanceRecord)
# A step run in the commit after the merge: (connection, tenant, the days an incremental load
# changed or None for the whole history).
PostMergeStep = Callable[[duckdb.DuckDBPyConnection, str, list[date] | None], object]


def _hash_expr(columns: list[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    parts = ", ".join(f"coalesce(CAST({prefix}{c} AS VARCHAR), '\\N')" for c in columns)
    return f"md5(concat_ws('|', {parts}))"


def _quote_sql(text: str) -> str:
    return text.replace("'", "''")


def _arrow(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    return pa.Table.from_pandas(frame[columns], preserve_index=False)


# --- loads ---------------------------------------------------------------------------------


def start_load(
    conn: duckdb.DuckDBPyConnection, ctx: SyncContext, stream: str, mode: str, now: datetime
) -> None:
    """Record the load as running (committed at once) and close out loads a crash left open."""

    def work() -> None:
        conn.execute(
            load_sql(__name__, "abandon_running_loads"),
            {
                "now": now,
                "tenant_id": ctx.tenant_id,
                "connection_id": ctx.connection_id,
                "stream": stream,
            },
        )
        conn.execute(
            "INSERT INTO ledger.loads (load_id, tenant_id, connection_id, stream, started_at, "
            "status, mode) VALUES (?, ?, ?, ?, ?, 'running', ?)",
            [ctx.load_id, ctx.tenant_id, ctx.connection_id, stream, now, mode],
        )

    run_transaction(conn, work, what=f"start {stream} load")


def _finish_load_sql(
    conn: duckdb.DuckDBPyConnection,
    load_id: str,
    stats: LoadStats,
    now: datetime,
    *,
    window: tuple[str | None, str | None] = (None, None),
    cursor: tuple[datetime | None, datetime | None] = (None, None),
) -> None:
    conn.execute(
        load_sql(__name__, "finish_load"),
        {
            "now": now,
            "rows_in": stats.rows_in,
            "upserted": stats.upserted,
            "unchanged": stats.unchanged,
            "quarantined": stats.quarantined,
            "tombstoned": stats.tombstoned,
            "window_start": window[0],
            "window_end": window[1],
            "cursor_before": cursor[0],
            "cursor_after": cursor[1],
            "upstream_moved": stats.upstream_moved,
            "cursor_held": stats.cursor_held,
            "held_back": stats.held_back,
            "quarantine_resolved": stats.quarantine_resolved,
            "load_id": load_id,
        },
    )


def fail_load(conn: duckdb.DuckDBPyConnection, load_id: str, error: str, now: datetime) -> None:
    """Mark a load failed; the message is the error's text (our errors carry no PII)."""
    run_transaction(
        conn,
        lambda: conn.execute(
            "UPDATE ledger.loads SET status = 'failed', finished_at = ?, error = ? "
            "WHERE load_id = ?",
            [now, error[:2000], load_id],
        ),
        what="record a failed load",
    )


def record_snapshot(conn: duckdb.DuckDBPyConnection, load_id: str) -> int | None:
    """Note in `ledger.loads` the lake snapshot the load committed: `pfo sql --as-of-load`
    reads the ledger exactly as that load left it. (Its own small commit, after the load's.)"""
    snapshot = last_snapshot(conn)
    if snapshot is not None:
        run_transaction(
            conn,
            lambda: conn.execute(
                "UPDATE ledger.loads SET snapshot_id = ? WHERE load_id = ?", [snapshot, load_id]
            ),
            what="record the load's snapshot",
        )
    return snapshot


# --- quarantine ----------------------------------------------------------------------------


def _insert_quarantine(
    conn: duckdb.DuckDBPyConnection,
    ctx: SyncContext,
    stream: str,
    rejects: list[Reject],
    now: datetime,
) -> int:
    """Keyed by the record's content: the same bad record seen again is not a new row (but a
    resolved one that comes back is open again)."""
    if not rejects:
        return 0
    rows = {"id": [], "external_id": [], "reasons": [], "record": [], "fault": []}
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


def _resolve_quarantine(
    conn: duckdb.DuckDBPyConnection, ctx: SyncContext, stream: str, loaded_sql: str, now: datetime
) -> int:
    """Mark open quarantine rows of this stream resolved when their record has now loaded
    (`loaded_sql` selects the external ids this load wrote); how many."""
    return conn.execute(
        "UPDATE ledger.quarantine SET resolved_at = ?, resolved_by_load = ? "
        "WHERE tenant_id = ? AND connection_id = ? AND stream = ? AND resolved_at IS NULL "
        f"AND external_id IN ({loaded_sql})",
        [now, ctx.load_id, ctx.tenant_id, ctx.connection_id, stream],
    ).fetchall()[0][0]


# --- accounts ------------------------------------------------------------------------------


def known_account_identities(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, connection_id: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(Powens id -> canonical id, identity key -> canonical id) already in the ledger."""
    rows = conn.execute(
        "SELECT external_id, account_id, identity_key FROM ledger.account_aliases "
        "WHERE tenant_id = ? AND connection_id = ?",
        [tenant_id, connection_id],
    ).fetchall()
    aliases = {external: account for external, account, _ in rows}
    identities = {key: account for _, account, key in rows if key}
    return aliases, identities


def account_refs(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, connection_id: str
) -> dict[int, AccountRef]:
    """Powens account id -> canonical account and its currency, for mapping transactions."""
    rows = conn.execute(
        "SELECT a.external_id, a.account_id, b.currency FROM ledger.account_aliases a "
        "JOIN ledger.bank_accounts b ON b.id = a.account_id "
        "WHERE a.tenant_id = ? AND a.connection_id = ?",
        [tenant_id, connection_id],
    ).fetchall()
    return {int(external): AccountRef(account, currency) for external, account, currency in rows}


def apply_accounts(
    conn: duckdb.DuckDBPyConnection,
    ctx: SyncContext,
    frame: pd.DataFrame,
    new_aliases: list[tuple[str, str, str | None]],
    rejects: list[Reject],
    now: datetime,
) -> LoadStats:
    externals, accounts, keys = (
        (list(column) for column in zip(*new_aliases, strict=True)) if new_aliases else ([], [], [])
    )
    aliases = pa.table(
        {"external_id": externals, "account_id": accounts, "identity_key": keys},
        schema=pa.schema(
            [
                ("external_id", pa.string()),
                ("account_id", pa.string()),
                ("identity_key", pa.string()),
            ]
        ),
    )
    loaded = pa.table({"external_id": pa.array(_aliases_of(frame), pa.string())})
    currencies = pa.table(
        {
            "id": pa.array(list(frame["id"]) if not frame.empty else [], pa.string()),
            "currency": pa.array(list(frame["currency"]) if not frame.empty else [], pa.string()),
        }
    )

    def work() -> LoadStats:
        stats = LoadStats(rows_in=len(frame) + len(rejects))
        # Transactions carry their account's currency (they have none of their own, S8): when
        # an account's changes (Powens sent `currency: null`, `XXX`, then its code), the next
        # transactions load re-reads everything, so every row and derivation follows.
        moved = conn.execute(
            "SELECT count(*) FROM ledger.bank_transactions t JOIN _account_currencies a "
            "ON a.id = t.account_id WHERE t.tenant_id = ? AND t.currency <> a.currency",
            [ctx.tenant_id],
        ).fetchall()[0][0]
        if moved:
            set_cursor(conn, ctx, "transactions", None)
        conn.execute(
            load_sql(__name__, "insert_account_aliases"),
            {"tenant_id": ctx.tenant_id, "connection_id": ctx.connection_id, "now": now},
        )
        updated, stats.inserted = _upsert(
            conn, "bank_accounts", frame, ACCOUNT_COLUMNS, ACCOUNT_COLUMNS[1:], ctx, now
        )
        stats.upserted = updated + stats.inserted
        stats.unchanged = len(frame) - stats.upserted
        stats.quarantined = _insert_quarantine(conn, ctx, "accounts", rejects, now)
        stats.quarantine_resolved = _resolve_quarantine(
            conn, ctx, "accounts", "SELECT external_id FROM _loaded_accounts", now
        )
        _finish_load_sql(conn, ctx.load_id, stats, now)
        return stats

    with registered(
        conn, _new_aliases=aliases, _loaded_accounts=loaded, _account_currencies=currencies
    ):
        stats = run_transaction(conn, work, what="commit the accounts load")
    record_snapshot(conn, ctx.load_id)
    return stats


def _aliases_of(frame: pd.DataFrame) -> list[str]:
    """Every Powens id a canonical account row stands for (renumbered ones included)."""
    ids: list[str] = []
    for metadata in frame["metadata"] if not frame.empty else []:
        ids += [str(i) for i in orjson.loads(metadata).get("powens_account_ids", [])]
    return ids


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
        updated, stats.inserted = _upsert(
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
        stats.quarantined = _insert_quarantine(conn, ctx, "balances", rejects, now)
        stats.quarantine_resolved = _resolve_quarantine(
            conn, ctx, "balances", "SELECT external_id FROM _loaded_balances", now
        )
        _finish_load_sql(conn, ctx.load_id, stats, now)
        return stats

    with registered(conn, _loaded_balances=loaded):
        stats = run_transaction(conn, work, what="commit the balances load")
    record_snapshot(conn, ctx.load_id)
    return stats


def _upsert(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    columns: list[str],
    hashed: list[str],
    ctx: SyncContext,
    now: datetime,
    *,
    has_updated_at: bool = True,
) -> tuple[int, int]:
    """Rewrite rows whose content hash changed, insert new ids, leave identical rows untouched;
    returns (updated, inserted)."""
    if frame.empty:
        return 0, 0
    with registered(conn, _upsert_batch=_arrow(frame, columns)):
        sets = [f"{c} = n.{c}" for c in columns if c != "id"]
        sets += ["row_hash = n.row_hash", "load_id = ?"]
        params: list[object] = [ctx.load_id]
        if has_updated_at:
            sets.append("updated_at = ?")
            params.append(now)
        updated = conn.execute(
            f"UPDATE ledger.{table} t SET {', '.join(sets)} "
            f"FROM (SELECT *, {_hash_expr(hashed)} AS row_hash FROM _upsert_batch) n "
            "WHERE t.id = n.id AND t.row_hash <> n.row_hash",
            params,
        ).fetchall()[0][0]
        extra_cols = "created_at, " + ("updated_at, " if has_updated_at else "")
        extra_vals = "?, " + ("?, " if has_updated_at else "")
        inserted = conn.execute(
            f"INSERT INTO ledger.{table} ({', '.join(columns)}, {extra_cols} row_hash, load_id) "
            f"SELECT {', '.join(columns)}, {extra_vals} {_hash_expr(hashed)}, ? "
            f"FROM _upsert_batch b WHERE NOT EXISTS "
            f"(SELECT 1 FROM ledger.{table} t WHERE t.id = b.id)",
            [*([now, now] if has_updated_at else [now]), ctx.load_id],
        ).fetchall()[0][0]
    return updated, inserted


# --- transactions --------------------------------------------------------------------------


def read_cursor(
    conn: duckdb.DuckDBPyConnection, tenant_id: str, connection_id: str, stream: str
) -> datetime | None:
    rows = conn.execute(
        "SELECT high_watermark FROM ledger.sync_cursors "
        "WHERE tenant_id = ? AND connection_id = ? AND stream = ?",
        [tenant_id, connection_id, stream],
    ).fetchall()
    return rows[0][0] if rows else None


class TransactionStage:
    """Validated batches of one load, spilled to local Parquet files until the single commit.

    The files (one per batch, in a private folder, `stage_folder` and `stage_file`) keep
    staged rows out of the process's memory while it fetches. Batches land there with their
    content hash already computed; the commit reads them in the load's one lake transaction.
    Also what the cursor rule needs (`cursor_rule.CursorEvidence`): the largest `last_update`
    seen, Powens' clock when the load began, why the listing moved while it was read, and the
    oldest row to read again. The folder goes away when the commit ends, or when a load that
    failed before its commit lets go of the stage (or the process exits).
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, ctx: SyncContext) -> None:
        self.conn = conn
        self.ctx = ctx
        self.rejects: list[Reject] = []
        self.rows_in = 0
        self.evidence = CursorEvidence()
        self.duplicates = 0
        self.held_back = 0
        self._batches = 0
        self._folder = new_stage_folder()  # private (0700); a dead load's is swept by the next
        # Unique per load: attached databases are shared by every cursor of the process's lake.
        self._alias = f"{STAGE_PREFIX}{uuid.uuid4().hex}"
        path = Path(self._folder.name) / "stage.duckdb"
        conn.execute(f"ATTACH '{_quote_sql(str(path))}' AS {self._alias}")
        self._cleanup = weakref.finalize(self, _drop_stage, conn, self._alias, self._folder)
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                "AND schema_name = 'ledger' AND table_name = 'bank_transactions'",
                [LAKE],
            ).fetchall()
        )
        # The batch's Arrow columns cast to the ledger's own types, so the hash computed here is
        # the one the ledger would compute (and stores in `row_hash`).
        self._typed = ", ".join(f"CAST({c} AS {types[c]}) AS {c}" for c in TRANSACTION_COLUMNS)
        self._files: list[Path] = []
        # Until the commit reads the batch files: an empty relation of the stage's shape.
        self._table = (
            f"(SELECT {', '.join(TRANSACTION_COLUMNS)}, row_hash, 0::BIGINT AS stage_seq, "
            "0::UBIGINT AS id_hash FROM ledger.bank_transactions LIMIT 0)"
        )

    def close(self) -> None:
        """Detach and delete the staging file (idempotent)."""
        self._cleanup()

    def add(self, frame: pd.DataFrame, rejects: list[Reject], raw_rows: int) -> None:
        self.rows_in += raw_rows
        self.rejects.extend(rejects)
        self._batches += 1
        if frame.empty:
            return
        # `stage_seq` orders batches as served: among equal `last_update`s the later copy wins.
        # (A batch holds one copy per id: the caller keeps the newest.) `id_hash`, the id's
        # 64-bit hash, is what the commit groups to find copies across batches.
        path = Path(self._folder.name) / f"batch_{self._batches:06d}.parquet"
        with registered(self.conn, _stage_batch=_arrow(frame, TRANSACTION_COLUMNS)):
            write_stage_batch(
                self.conn,
                path,
                f"SELECT *, {_hash_expr(_TRANSACTION_HASHED)} AS row_hash, "
                f"{int(self._batches)}::BIGINT AS stage_seq, hash(id) AS id_hash "
                f"FROM (SELECT {self._typed} FROM _stage_batch)",
            )
        self._files.append(path)
        self._table = read_stage_batches(self._files)

    def note_watermark(self, value: datetime | None) -> None:
        """The largest `last_update` of a batch's records (the caller passes it once per batch)."""
        self.evidence.note_last_update(value)

    def note_pages(self, server_time: datetime | None, duplicates: int, moved_rows: int) -> None:
        """What a batch's pages said: Powens' clock at the load's first page, how many repeated
        copies of a row they carried, and how many of those were a different version."""
        self.evidence.note_clock(server_time)
        self.duplicates += duplicates
        if duplicates:
            versions = f", {moved_rows} of them in two versions" if moved_rows else ""
            self.evidence.note_shift(f"{duplicates} rows served twice{versions}")

    def note_shift(self, reasons: list[str]) -> None:
        """Signs that Powens' listing moved while the load read it (`cursor_rule`)."""
        for reason in reasons:
            self.evidence.note_shift(reason)

    def note_held_back(self, last_updates: list[datetime | None]) -> None:
        """Rows that cannot load yet (unknown account, null `value`): the cursor stays before
        them, so the next sync reads them again."""
        self.held_back += len(last_updates)
        self.evidence.note_refetch(last_updates)

    def next_cursor(self, cursor_before: datetime | None) -> datetime | None:
        """The cursor this load may commit: `cursor_rule.next_cursor` of what it saw."""
        return next_cursor(self.evidence.seen(cursor_before))

    def _drop_older_copies(self) -> int:
        """Several copies of one Powens row in a load (pages overlap when Powens' data moves
        while we page) make one row: the newest by `last_update`, on a tie the copy served last.
        Leaves the others out of what the commit reads; returns how many distinct rows remain."""
        conn, stage = self.conn, self._table
        # Repeated ids first, then the few copies' details. The ids are grouped by their 64-bit
        # hash (a tenth of the memory of grouping the text ids; computed when the batch was
        # staged, so a slice reads 8 bytes a row), one slice of the hash range per
        # `HASH_GROUP_ROWS` staged rows, so the memory follows the slice, not the load; only
        # rows whose hash repeats are then grouped by id.
        slices = max(1, -(-self.rows_in // HASH_GROUP_ROWS))
        repeated = []
        for part in range(slices):
            table = f"{self._alias}.main.repeated_hashes_{part}"
            create_stage_table(
                conn,
                table,
                f"SELECT id_hash AS h FROM {stage} WHERE id_hash % {slices} = {part} "
                "GROUP BY h HAVING count(*) > 1",
            )
            repeated.append(f"SELECT h FROM {table}")
        copied = f"{self._alias}.main.copied_ids"
        create_stage_table(
            conn,
            copied,
            f"SELECT id FROM {stage} SEMI JOIN ({' UNION ALL '.join(repeated)}) r "
            "ON r.h = id_hash GROUP BY id HAVING count(*) > 1",
        )
        across, versions = conn.execute(
            f"SELECT coalesce(sum(copies - 1), 0), count(*) FILTER (WHERE versions > 1) FROM "
            f"(SELECT count(*) AS copies, count(DISTINCT provider_updated_at) AS versions "
            f"FROM {stage} s SEMI JOIN {copied} c ON c.id = s.id GROUP BY s.id)"
        ).fetchall()[0]
        self.note_pages(None, int(across), int(versions))
        if across:
            # Batch files are not rewritten: the older copies are listed and left out when read.
            older = f"{self._alias}.main.older_copies"
            create_stage_table(
                conn,
                older,
                f"SELECT s.id, s.stage_seq FROM {stage} s SEMI JOIN {copied} c ON c.id = s.id "
                "QUALIFY row_number() OVER (PARTITION BY s.id ORDER BY s.provider_updated_at "
                "DESC NULLS LAST, s.stage_seq DESC) > 1",
            )
            self._table = (
                f"(SELECT s.* FROM {stage} s ANTI JOIN {older} o "
                "ON o.id = s.id AND o.stage_seq = s.stage_seq)"
            )
        return conn.execute(f"SELECT count(*) FROM {self._table}").fetchall()[0][0]

    def commit(
        self,
        now: datetime,
        *,
        cursor_before: datetime | None,
        window: tuple[str | None, str | None],
        post_merge: list[PostMergeStep],
        incremental: bool = False,
    ) -> LoadStats:
        """Apply the whole load atomically: upsert, tombstones, twins, transfers, overrides,
        quarantine (and what it resolved), cursor and load record, or nothing at all.

        The `post_merge` steps get the days an `incremental` load's rows were on before and
        after it (what it can have changed), or None: derive from the whole history."""
        conn, ctx = self.conn, self.ctx
        try:
            staged = self._drop_older_copies()
        except BaseException:
            self.close()
            raise
        stage = self._table  # the staged batches, older copies left out
        cursor_after = self.next_cursor(cursor_before)

        def work() -> LoadStats:
            """Runs again from a fresh snapshot if another writer commits first."""
            stats = LoadStats(
                rows_in=self.rows_in,
                held_back=self.held_back,
                duplicates=self.duplicates,
                upstream_moved=self.evidence.shifts > 0,
                cursor_held=self.evidence.shifts > 0,
                shift_reasons=list(self.evidence.shift_reasons),
            )
            if incremental:
                updated, changed_days = _merge_changes(conn, now, ctx.load_id, stage, stats)
            else:
                updated, changed_days = _merge_all(conn, now, ctx.load_id, stage, stats), None
            stats.upserted = updated + stats.inserted
            stats.unchanged = staged - stats.upserted
            stats.twins_linked = link_reissued_twins(conn, ctx.tenant_id, changed_days)
            for step in post_merge:
                step(conn, ctx.tenant_id, changed_days)
            stats.quarantined = _insert_quarantine(conn, ctx, "transactions", self.rejects, now)
            # Only open quarantine rows are looked up in the stage (a join on the few, not a
            # set of every staged id).
            stats.quarantine_resolved = _resolve_quarantine(
                conn,
                ctx,
                "transactions",
                f"SELECT s.external_id FROM {stage} s SEMI JOIN ledger.quarantine q "
                "ON q.external_id = s.external_id AND q.resolved_at IS NULL "
                "AND q.stream = 'transactions' AND q.tenant_id = "
                f"'{_quote_sql(ctx.tenant_id)}'",
                now,
            )
            set_cursor(conn, ctx, "transactions", cursor_after)
            _finish_load_sql(
                conn, ctx.load_id, stats, now, window=window, cursor=(cursor_before, cursor_after)
            )
            return stats

        try:
            stats = run_transaction(conn, work, what="commit the transactions load")
        finally:
            self.close()
        record_snapshot(conn, ctx.load_id)
        return stats


def _drop_stage(conn: duckdb.DuckDBPyConnection, alias: str, folder: StageFolder) -> None:
    with contextlib.suppress(duckdb.Error):
        conn.execute(f"DETACH DATABASE IF EXISTS {alias}")
    folder.cleanup()


def set_cursor(
    conn: duckdb.DuckDBPyConnection, ctx: SyncContext, stream: str, value: datetime | None
) -> None:
    """Write the stream's cursor (None removes it: the next sync reads everything); a cursor
    equal to the stored one is left untouched, so a no-op load changes nothing."""
    key = [ctx.tenant_id, ctx.connection_id, stream]
    where = "WHERE tenant_id = ? AND connection_id = ? AND stream = ?"
    if value is None:
        conn.execute(f"DELETE FROM ledger.sync_cursors {where}", key)
        return
    stored = conn.execute(f"SELECT high_watermark FROM ledger.sync_cursors {where}", key).fetchall()
    if stored and stored[0][0] == value:
        return
    conn.execute(f"DELETE FROM ledger.sync_cursors {where}", key)
    conn.execute(
        "INSERT INTO ledger.sync_cursors VALUES (?, ?, ?, ?, ?)", [*key, value, ctx.load_id]
    )


def _merge_all(
    conn: duckdb.DuckDBPyConnection, now: datetime, load_id: str, stage: str, stats: LoadStats
) -> int:
    """Upsert the stage into the ledger (tombstones and inserts into `stats`); rows rewritten."""
    stats.tombstoned = conn.execute(
        f"SELECT count(*) FROM {stage} s LEFT JOIN ledger.bank_transactions t "
        "ON t.id = s.id WHERE s.status = 'cancelled' AND t.status IS DISTINCT FROM 'cancelled'"
    ).fetchall()[0][0]
    # Rewrite the existing rows whose Powens content changed, then insert the ids the
    # ledger has never seen (DuckLake has no keys, and this is 3x cheaper than an upsert
    # returning rows on a million-row first load).
    updated = _update_changed_transactions(conn, now, load_id, stage)
    stats.inserted = _insert_transactions(
        conn,
        now,
        load_id,
        f"{stage} s WHERE NOT EXISTS (SELECT 1 FROM ledger.bank_transactions t WHERE t.id = s.id)",
    )
    return updated


def _merge_changes(
    conn: duckdb.DuckDBPyConnection, now: datetime, load_id: str, stage: str, stats: LoadStats
) -> tuple[int, list[date]]:
    """`_merge_all` for a load that changes few of the ledger's rows: the staged rows are matched
    with the ledger once, noting which are new and what date the changed ones had, so the
    rewrite only looks up those dates and the insert nothing. Returns (rows rewritten, the days
    the load's new and rewritten rows were on, before and after)."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _load_changes AS "
        "SELECT s.id, s.date, t.date AS old_date, t.id IS NULL AS inserted, "
        "s.status = 'cancelled' AND t.status IS DISTINCT FROM 'cancelled' AS tombstoned "
        f"FROM {stage} s LEFT JOIN ledger.bank_transactions t ON t.id = s.id "
        "WHERE t.row_hash IS DISTINCT FROM s.row_hash"  # a status change changes the hash
    )
    try:
        stats.tombstoned, first, last = conn.execute(
            "SELECT count(*) FILTER (WHERE tombstoned), min(old_date), max(old_date) "
            "FROM _load_changes"
        ).fetchall()[0]
        updated = 0
        if first is not None:
            updated = _update_changed_transactions(conn, now, load_id, stage, dated=(first, last))
        # (An IN list, not a SEMI JOIN with the flag in its condition: that one is a nested loop.)
        stats.inserted = _insert_transactions(
            conn,
            now,
            load_id,
            f"{stage} s WHERE s.id IN (SELECT id FROM _load_changes WHERE inserted)",
        )
        days = conn.execute(
            "SELECT date FROM _load_changes UNION "
            "SELECT old_date FROM _load_changes WHERE old_date IS NOT NULL"
        ).fetchall()
        return updated, [day for (day,) in days]
    finally:
        conn.execute("DROP TABLE IF EXISTS _load_changes")


def _insert_transactions(
    conn: duckdb.DuckDBPyConnection, now: datetime, load_id: str, staged_rows: str
) -> int:
    """Insert `staged_rows` (a FROM clause over the stage aliased `s`) as new ledger rows."""
    return conn.execute(
        f"INSERT INTO ledger.bank_transactions ({', '.join(TRANSACTION_COLUMNS)}, "
        "created_at, updated_at, first_seen_at, row_hash, load_id) "
        f"SELECT {', '.join(TRANSACTION_COLUMNS)}, ?, ?, ?, row_hash, ? FROM {staged_rows}",
        [now, now, now, load_id],
    ).fetchall()[0][0]


def _update_changed_transactions(
    conn: duckdb.DuckDBPyConnection,
    now: datetime,
    load_id: str,
    stage: str,
    dated: tuple[date, date] | None = None,
) -> int:
    """Rewrite ledger rows whose Powens-owned content changed (content hash); how many.
    `dated`: every such row is dated within these bounds (the scan skips other dates).

    A user's category override survives; `booked_at` keeps the first time the row was booked;
    `created_at` and `first_seen_at` keep the row's first load.
    """
    replaced = [
        f"{c} = n.{c}"
        for c in TRANSACTION_COLUMNS
        if c not in ("id", "standardized_category", "category_source", "booked_at")
    ]
    return conn.execute(
        f"UPDATE ledger.bank_transactions t SET {', '.join(replaced)}, "
        "standardized_category = CASE WHEN t.category_source = 'user' "
        "THEN t.standardized_category ELSE n.standardized_category END, "
        "category_source = CASE WHEN t.category_source = 'user' THEN 'user' "
        "ELSE n.category_source END, "
        "booked_at = coalesce(t.booked_at, n.booked_at), "
        "row_hash = n.row_hash, load_id = ?, updated_at = ? "
        f"FROM {stage} n "
        "WHERE t.id = n.id AND t.row_hash <> n.row_hash"
        + (" AND t.date BETWEEN ? AND ?" if dated else ""),
        [load_id, now, *(dated or ())],
    ).fetchall()[0][0]


def overlap_start(cursor: datetime | None, overlap: timedelta) -> datetime | None:
    return None if cursor is None else cursor - overlap
