"""Powens payloads -> canonical record frames (docs/spec.md §4), columnar so a million rows stay cheap.

Rules: amounts keep Powens' sign (negative = money out) and `direction` follows it; status is
`cancelled` when Powens set `deleted`, else `pending` when `coming`, else `booked`; the description
falls back wording -> simplified -> original wording; account numbers keep only their last 4
characters; canonical ids are deterministic hashes of tenant, connection and Powens id; an account
Powens renumbered (same IBAN, new id) resolves to the canonical account it already had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from pfo_pipeline.ledger.currencies import NO_CURRENCY
from pfo_pipeline.ledger.records import (
    DAY,
    MONEY,
    PROVIDER_TS,
    TEXT,
    AccountBalanceRecord,
    BankAccountRecord,
    record_columns,
)
from pfo_pipeline.ledger.transaction_metadata import transaction_metadata
from pfo_pipeline.ledger.types import FAULT_HELD_BACK, AccountRef, Reject, SyncContext
from pfo_pipeline.powens.models import PowensAccount, PowensConnector, PowensTransaction

UNCATEGORISED = "other"


def canonical_id(kind: str, *parts: object) -> str:
    """Stable id: `<kind>_` + 32 hex of md5(parts). md5 is for identity here, not for security."""
    digest = hashlib.md5("|".join(str(p) for p in parts).encode(), usedforsecurity=False)
    return f"{kind}_{digest.hexdigest()}"


def mask_account_number(number: str | None) -> str | None:
    """All but the last 4 characters masked; 4 or fewer characters are masked entirely."""
    if not number:
        return None
    compact = number.replace(" ", "")
    if len(compact) <= 4:
        return "*" * len(compact)
    return "*" * (len(compact) - 4) + compact[-4:]


def identity_key(account: PowensAccount) -> str | None:
    """What survives a Powens renumbering: the IBAN, else the account number."""
    if account.iban:
        return "iban:" + account.iban.replace(" ", "").upper()
    if account.number:
        return "number:" + account.number.replace(" ", "").upper()
    return None


def account_currency(account: PowensAccount) -> str:
    """The account's ISO code; `XXX` (no currency) when Powens sent `currency: null` (S3 allows
    it, facts §8): recorded as unknown rather than guessed, and its transactions inherit it."""
    return account.currency.id if account.currency else NO_CURRENCY


def map_ownership(ownership: str | None, usage: str | None) -> str:
    if usage and usage.upper() in ("ORGA", "ASSO"):
        return "business"
    if ownership == "co-owner":
        return "joint"
    if ownership in ("owner", "attorney"):
        return "individual"
    return "unknown"


def map_account_status(account: PowensAccount) -> str:
    if account.deleted is not None:
        return "closed"
    if account.disabled is not None:
        return "inactive"
    if account.error:
        return "suspended"
    return "active"


def _json(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _preference(account: PowensAccount) -> tuple[int, int, int]:
    """Among Powens ids of one canonical account, the live one represents it."""
    return (account.deleted is None, account.disabled is None, account.id)


@dataclass
class AccountResolution:
    """Powens account id -> canonical account id, plus the aliases seen for the first time."""

    by_powens_id: dict[int, str]
    new_aliases: list[tuple[str, str, str | None]]  # (external_id, account_id, identity_key)
    representatives: dict[str, PowensAccount]


def resolve_accounts(
    accounts: Iterable[PowensAccount],
    ctx: SyncContext,
    known_aliases: dict[str, str],
    known_identities: dict[str, str],
) -> AccountResolution:
    """Give every Powens account its canonical id: a known alias, else an account with the same
    identity (IBAN/number: Powens renumbered it), else a new deterministic id."""
    by_powens_id: dict[int, str] = {}
    new_aliases: list[tuple[str, str, str | None]] = []
    identities = dict(known_identities)
    ordered = sorted(accounts, key=lambda a: a.id)
    for account in ordered:
        key = identity_key(account)
        external = str(account.id)
        account_id = known_aliases.get(external)
        if account_id is None:
            account_id = (identities.get(key) if key else None) or canonical_id(
                "acc", ctx.tenant_id, ctx.connection_id, external
            )
            new_aliases.append((external, account_id, key))
        if key and key not in identities:
            identities[key] = account_id
        by_powens_id[account.id] = account_id
    representatives: dict[str, PowensAccount] = {}
    for account in ordered:
        account_id = by_powens_id[account.id]
        current = representatives.get(account_id)
        if current is None or _preference(account) > _preference(current):
            representatives[account_id] = account
    return AccountResolution(by_powens_id, new_aliases, representatives)


def map_accounts(
    resolution: AccountResolution,
    connectors_by_connection: dict[int, PowensConnector],
    ctx: SyncContext,
) -> pd.DataFrame:
    """One row per canonical account, from its representative Powens account."""
    rows = []
    for account_id, account in sorted(resolution.representatives.items()):
        connector = connectors_by_connection.get(account.id_connection or -1)
        institution_id = (
            (connector.uuid or (str(connector.id) if connector.id is not None else None))
            if connector
            else None
        )
        balance = account.balance
        available = None if balance is None else balance + (account.coming or Decimal(0))
        parent = (
            resolution.by_powens_id.get(account.id_parent)
            if account.id_parent is not None
            else None
        )
        aliases = sorted(
            powens_id for powens_id, cid in resolution.by_powens_id.items() if cid == account_id
        )
        metadata: dict[str, Any] = {
            "powens_account_ids": aliases,
            "usage": account.usage,
            "opening_date": account.opening_date.isoformat() if account.opening_date else None,
            "coming": str(account.coming) if account.coming is not None else None,
            "powens_error": account.error,
        }
        if account.loan:
            metadata["loan"] = {
                k: account.loan.get(k)
                for k in ("type", "total_amount", "rate", "maturity_date", "nb_payments_left")
                if k in account.loan
            }
        rows.append(
            {
                "id": account_id,
                "tenant_id": ctx.tenant_id,
                "user_id": str(account.id_user)
                if account.id_user is not None
                else ctx.powens_user_id,
                "connection_id": ctx.connection_id,
                "external_id": str(account.id),
                "institution_id": institution_id or f"powens-connection-{account.id_connection}",
                "institution_name": (connector.name if connector and connector.name else None)
                or "Unknown institution",
                "institution_logo_url": connector.logo_url if connector else None,
                "iban": account.iban,
                "bic": account.bic,
                "account_type": account.type or "unknown",
                "currency": account_currency(account),
                "display_name": account.name or account.original_name or f"{account.type} account",
                "account_number_masked": mask_account_number(account.number),
                "product_code": None,
                "balance": balance,
                "available_balance": available,
                "ownership": map_ownership(account.ownership, account.usage),
                "status": map_account_status(account),
                "parent_account_id": parent,
                "last_synced_at": account.last_update,
                "metadata": _json(metadata),
            }
        )
    return _typed_frame(
        rows,
        money=("balance", "available_balance"),
        provider_ts=("last_synced_at",),
        columns=_ACCOUNT_COLUMNS,
    )


def map_balances(
    resolution: AccountResolution, ctx: SyncContext, as_of: date
) -> tuple[pd.DataFrame, list[Reject]]:
    """The `current` snapshot per live canonical account (Powens keeps no history). A balance is
    as of the day Powens last synced the account (its `last_update`), not the day we asked:
    a connection that has not synced for three days must not label an old balance as today's."""
    rows, rejects = [], []
    for account_id, account in sorted(resolution.representatives.items()):
        if account.deleted is not None:
            continue  # a closed account has no current balance to snapshot
        if account.balance is None:
            rejects.append(
                Reject(str(account.id), ("balance: Powens sent no balance",), {"id": account.id})
            )
            continue
        day = account.last_update.date() if account.last_update else as_of
        rows.append(
            {
                "id": canonical_id("bal", account_id, "current", day.isoformat()),
                "account_id": account_id,
                "tenant_id": ctx.tenant_id,
                "connection_id": ctx.connection_id,
                "balance_type": "current",
                "current_balance": account.balance,
                "available_balance": account.balance + (account.coming or Decimal(0)),
                "currency": account_currency(account),
                "last_updated_at": account.last_update,
                "as_of_date": day,
                "metadata": _json({"powens_account_id": account.id}),
            }
        )
    frame = _typed_frame(
        rows,
        money=("current_balance", "available_balance"),
        provider_ts=("last_updated_at",),
        days=("as_of_date",),
        columns=_BALANCE_COLUMNS,
    )
    return frame, rejects


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
    frame = _typed_frame(
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


_ACCOUNT_COLUMNS = record_columns(BankAccountRecord)
_BALANCE_COLUMNS = record_columns(AccountBalanceRecord)


def _typed_frame(
    data: list[dict[str, Any]] | dict[str, list[Any]],
    *,
    money: tuple[str, ...] = (),
    provider_ts: tuple[str, ...] = (),
    days: tuple[str, ...] = (),
    columns: list[str] | None,
) -> pd.DataFrame:
    """Build a frame with exact Arrow decimals, dates and naive timestamps (no float, no NaT games)."""
    if isinstance(data, list):
        assert columns is not None
        data = {name: [row[name] for row in data] for name in columns}
    columns_out: dict[str, pd.Series] = {}
    for name, values in data.items():
        if name in money:
            columns_out[name] = _money_series(values)
        elif name in provider_ts:
            columns_out[name] = pd.Series(
                pa.array(values, type=pa.timestamp("us")), dtype=PROVIDER_TS
            )
        elif name in days:
            columns_out[name] = pd.Series(pa.array(values, type=pa.date32()), dtype=DAY)
        else:
            columns_out[name] = _text_series(values)
    frame = pd.DataFrame(columns_out)
    return frame


def _text_series(values: list[Any] | pa.Array) -> pd.Series:
    """Arrow-backed text straight from Arrow (pandas' own path checks every value in Python);
    anything but str/None takes pandas' path, which turns it into text."""
    if isinstance(values, pa.Array):
        return pd.Series(pd.arrays.ArrowStringArray(values.cast(pa.large_string())), dtype=TEXT)
    try:
        array = pa.array(values, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.Series(values, dtype=TEXT)
    return pd.Series(pd.arrays.ArrowStringArray(array), dtype=TEXT)


def _money_series(values: list[Decimal | None]) -> pd.Series:
    """DECIMAL(18,2) without rounding: a value with more decimals becomes null so validation
    quarantines it (the nullable check on the column names the field)."""
    try:
        array = pa.array(values, type=pa.decimal128(18, 2))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        exact = [v if v is None or v == v.quantize(Decimal("0.01")) else None for v in values]
        array = pa.array(exact, type=pa.decimal128(18, 2))
    return pd.Series(array, dtype=MONEY)
