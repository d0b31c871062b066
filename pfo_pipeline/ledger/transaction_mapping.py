"""Powens transactions -> `BankTransactionRecord` frames (docs/spec.md §4), column-wise, a batch at
a time: a million rows stay cheap.

Amounts keep Powens' sign (negative = money out) and `direction` follows it; status is
`cancelled` when Powens set `deleted`, else `pending` when `coming`, else `booked`; the description
falls back wording -> simplified -> original wording; transactions carry their account's
currency (they have none of their own); canonical ids are deterministic hashes of tenant,
connection and Powens id. A row of an account the ledger does not know yet is held back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from pfo_pipeline.ledger.frames import typed_frame
from pfo_pipeline.ledger.records import TEXT
from pfo_pipeline.ledger.transaction_metadata import transaction_metadata
from pfo_pipeline.ledger.types import FAULT_HELD_BACK, AccountRef, Reject, SyncContext
from pfo_pipeline.powens.models import PowensTransaction


def map_transactions(
    records: list[PowensTransaction],
    ctx: SyncContext,
    accounts: dict[int, AccountRef],
    categorise: Callable[[pd.DataFrame], pd.Series],
) -> tuple[pd.DataFrame, list[Reject]]:
    """Column-wise mapping of a batch. A row of an account the ledger does not know is held
    back (not guessed, not blamed on the record): the caller keeps the cursor before it."""
    rejects: list[Reject] = []
    kept: list[PowensTransaction] = []
    for record in records:
        if record.id_account in accounts:
            kept.append(record)
        else:
            rejects.append(
                Reject(
                    str(record.id),
                    (
                        f"account_id: Powens account {record.id_account} is not in the ledger "
                        "yet; held back until an accounts sync has seen it",
                    ),
                    _transaction_payload(record),
                    FAULT_HELD_BACK,
                )
            )
    refs = [accounts[r.id_account] for r in kept]
    amounts = [r.value for r in kept]
    deleted = [r.deleted for r in kept]
    coming = [r.coming for r in kept]
    status = [
        "cancelled" if d is not None else ("pending" if c else "booked")
        for d, c in zip(deleted, coming, strict=True)
    ]
    last_update = [r.last_update for r in kept]
    columns: dict[str, list[Any]] = {
        "id": _transaction_ids(ctx, kept),
        "account_id": [ref.account_id for ref in refs],
        "tenant_id": [ctx.tenant_id] * len(kept),
        "connection_id": [ctx.connection_id] * len(kept),
        "external_id": [str(r.id) for r in kept],
        "amount": amounts,
        "currency": [ref.currency for ref in refs],
        "direction": ["debit" if a < 0 else "credit" for a in amounts],
        "date": [r.date for r in kept],
        "booking_date": [r.bdate or r.date for r in kept],
        "value_date": [r.vdate for r in kept],
        "description": [r.wording or r.simplified_wording or r.original_wording for r in kept],
        "counterparty_name": [r.counterparty_label for r in kept],
        "counterparty_account": [r.counterparty_account for r in kept],
        "merchant_category_code": [None] * len(kept),
        "raw_category": [_raw_category(r) for r in kept],
        "transaction_type": [r.type or "unknown" for r in kept],
        "status": status,
        "running_balance": [None] * len(kept),
        "metadata": transaction_metadata(kept),
        "provider_updated_at": last_update,
        "booked_at": [
            lu if s == "booked" else None for lu, s in zip(last_update, status, strict=True)
        ],
        "deleted_at": deleted,
        "original_currency": [
            r.original_currency.id if r.original_currency else None for r in kept
        ],
    }
    frame = typed_frame(
        columns,
        money=("amount", "running_balance"),
        provider_ts=("provider_updated_at", "booked_at", "deleted_at"),
        days=("date", "booking_date", "value_date"),
        columns=None,
    )
    frame["standardized_category"] = categorise(frame).astype(TEXT)
    frame["category_source"] = pd.Series(["rule"] * len(frame), index=frame.index, dtype=TEXT)
    return frame, rejects


def _transaction_ids(ctx: SyncContext, records: list[PowensTransaction]) -> list[str]:
    """`canonical_id("txn", tenant, connection, id)` for a batch, without its per-call join."""
    prefix = f"{ctx.tenant_id}|{ctx.connection_id}|"
    md5 = hashlib.md5
    return [
        "txn_" + md5(f"{prefix}{r.id}".encode(), usedforsecurity=False).hexdigest() for r in records
    ]


def _raw_category(record: PowensTransaction) -> str | None:
    if record.categories:
        return record.categories[0]
    if record.id_category is not None and record.id_category != 9998:
        return str(record.id_category)
    return None


def _transaction_payload(record: PowensTransaction) -> dict[str, Any]:
    """A parsed record back to JSON-able form for the quarantine (the ledger may hold PII)."""
    out: dict[str, Any] = {}
    for name in record.__slots__:  # type: ignore[attr-defined]
        value = getattr(record, name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, date | datetime):
            value = value.isoformat()
        elif hasattr(value, "__slots__"):
            value = {k: getattr(value, k) for k in value.__slots__}
        out[name] = value
    return out
