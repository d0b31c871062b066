"""The accounts load: canonical accounts (renumbering-proof: every Powens id an account was
seen under is an alias of it) upserted with their quarantine and load record in one commit."""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from pfo_pipeline.lake import registered, run_transaction
from pfo_pipeline.ledger.columns import ACCOUNT_COLUMNS
from pfo_pipeline.ledger.cursors import set_cursor
from pfo_pipeline.ledger.loads import finish_load, record_snapshot
from pfo_pipeline.ledger.quarantine import settle_quarantine
from pfo_pipeline.ledger.types import AccountRef, LoadStats, Reject, SyncContext
from pfo_pipeline.ledger.upsert import upsert_rows
from pfo_pipeline.sql_files import load_sql


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
        updated, stats.inserted = upsert_rows(
            conn, "bank_accounts", frame, ACCOUNT_COLUMNS, ACCOUNT_COLUMNS[1:], ctx, now
        )
        stats.upserted = updated + stats.inserted
        stats.unchanged = len(frame) - stats.upserted
        settle_quarantine(
            conn, ctx, "accounts", rejects, "SELECT external_id FROM _loaded_accounts", stats, now
        )
        finish_load(conn, ctx.load_id, stats, now)
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
