"""Read side of the original design (`accounts.list/get`, `transactions.list`, `balances.get`).

They read the canonical ledger, never Powens, for the app and LLM layers. Paging is keyset-based
with an opaque cursor, so pages stay stable while syncs append rows.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import orjson

MAX_PAGE_SIZE = 500


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values, default=str)).decode()


def _decode_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise ValueError("cursor: not a cursor returned by a previous page") from None
    if not isinstance(values, list):
        raise ValueError("cursor: not a cursor returned by a previous page")
    return values


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size: must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    return page_size


def list_accounts(
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str,
    *,
    user_id: str | None = None,
    connection_id: str | None = None,
    institution_id: str | None = None,
    include_balances: bool = True,
    cursor: str | None = None,
    page_size: int = 50,
) -> Page:
    """`openbanking.accounts.list`: canonical accounts of a tenant, ordered by id."""
    size = _page_size(page_size)
    after = _decode_cursor(cursor)
    where, params = ["tenant_id = ?"], [tenant_id]
    for column, value in (
        ("user_id", user_id),
        ("connection_id", connection_id),
        ("institution_id", institution_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if after:
        where.append("id > ?")
        params.append(after[0])
    rows = _rows(
        conn,
        f"SELECT * EXCLUDE (row_hash) FROM ledger.bank_accounts WHERE {' AND '.join(where)} "
        f"ORDER BY id LIMIT {size + 1}",
        params,
    )
    if not include_balances:
        for row in rows:
            row.pop("balance", None)
            row.pop("available_balance", None)
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, _encode_cursor([rows[-1]["id"]]) if more else None)


def list_transactions(
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str,
    account_id: str,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    direction: str | None = None,
    minimum_amount: Decimal | None = None,
    maximum_amount: Decimal | None = None,
    category: str | None = None,
    cursor: str | None = None,
    page_size: int = 100,
) -> Page:
    """`openbanking.transactions.list`: newest first, filters of the original contract."""
    size = _page_size(page_size)
    if direction not in (None, "debit", "credit"):
        raise ValueError(f"direction: must be 'debit' or 'credit', got {direction!r}")
    where, params = ["tenant_id = ?", "account_id = ?"], [tenant_id, account_id]
    for clause, value in (
        ("date >= ?", date_from),
        ("date <= ?", date_to),
        ("direction = ?", direction),
        ("abs(amount) >= ?", minimum_amount),
        ("abs(amount) <= ?", maximum_amount),
        ("standardized_category = ?", category),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    after = _decode_cursor(cursor)
    if after:
        where.append("(date < ?::DATE OR (date = ?::DATE AND id > ?))")
        params += [after[0], after[0], after[1]]
    rows = _rows(
        conn,
        f"SELECT * EXCLUDE (row_hash) FROM ledger.bank_transactions WHERE {' AND '.join(where)} "
        f"ORDER BY date DESC, id LIMIT {size + 1}",
        params,
    )
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = _encode_cursor([rows[-1]["date"], rows[-1]["id"]]) if more else None
    return Page(rows, next_cursor)


def get_balances(
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str,
    account_id: str,
    *,
    balance_types: list[str] | None = None,
) -> tuple[list[dict[str, Any]], date | None]:
    """`openbanking.balances.get`: the latest snapshot per balance type, and its day."""
    where, params = ["tenant_id = ?", "account_id = ?"], [tenant_id, account_id]
    if balance_types:
        where.append("list_contains(?, balance_type)")
        params.append(balance_types)
    rows = _rows(
        conn,
        f"SELECT * EXCLUDE (row_hash) FROM ledger.account_balances WHERE {' AND '.join(where)} "
        "QUALIFY row_number() OVER (PARTITION BY balance_type ORDER BY as_of_date DESC) = 1 "
        "ORDER BY balance_type",
        params,
    )
    as_of = max((r["as_of_date"] for r in rows), default=None)
    return rows, as_of
