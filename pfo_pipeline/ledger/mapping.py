"""Powens accounts -> `BankAccountRecord` and `AccountBalanceRecord` frames (docs/spec.md §4), and
the canonical ids every record carries (transactions: `transaction_mapping`).

Account numbers keep only their last 4 characters; canonical ids are deterministic hashes of
tenant, connection and Powens id; an account Powens renumbered (same IBAN, new id) resolves to the
canonical account it already had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import pandas as pd

from pfo_pipeline.ledger.currencies import NO_CURRENCY
from pfo_pipeline.ledger.frames import typed_frame
from pfo_pipeline.ledger.records import AccountBalanceRecord, BankAccountRecord, record_columns
from pfo_pipeline.ledger.types import Reject, SyncContext
from pfo_pipeline.powens.models import PowensAccount, PowensConnector

_ACCOUNT_COLUMNS = record_columns(BankAccountRecord)
_BALANCE_COLUMNS = record_columns(AccountBalanceRecord)


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
    return typed_frame(
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
    frame = typed_frame(
        rows,
        money=("current_balance", "available_balance"),
        provider_ts=("last_updated_at",),
        days=("as_of_date",),
        columns=_BALANCE_COLUMNS,
    )
    return frame, rejects
