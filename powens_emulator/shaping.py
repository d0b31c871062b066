"""Powens JSON shapes of the world's objects: connections, accounts and transactions (one at a
time, as dicts; `pages.py` encodes whole pages of transactions straight to bytes)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson
from starlette.responses import Response

from powens_emulator.catalog import CONNECTORS, CURRENCIES, TYPES, USER_CONNECTIONS, Account
from powens_emulator.clock import fmt_day, fmt_now, fmt_ts
from powens_emulator.data import FamilyWorld
from powens_emulator.variants import Variant

DEFAULT = Variant()

MALFORMED_KINDS = ("missing_id", "non_numeric_value", "impossible_date", "unknown_currency")
CARD_TYPES = ("card", "deferred_card")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def connection_json(
    world: FamilyWorld, user: int, state: str | None, *, expand: bool, variant: Variant = DEFAULT
) -> dict[str, Any]:
    connection_id, connector_id = USER_CONNECTIONS[user]
    now = world.now
    body = {
        "id": connection_id, "id_user": user, "id_connector": connector_id,
        "connector_uuid": next(c["uuid"] for c in CONNECTORS if c["id"] == connector_id),
        "state": state, "error": state,
        "error_message": f"Reconnect at https://bank.example.invalid/auth?state=x{user}" if state else None,
        "last_update": fmt_now(now), "created": "2023-01-15 10:05:00",
        "active": True, "last_push": None,
        "expire": fmt_now(now + timedelta(days=90)), "next_try": None,
    }  # fmt: skip
    if expand:
        connector = dict(next(c for c in CONNECTORS if c["id"] == connector_id))
        body["connector"] = variant.reshape("connector", connector, connector_id)
    return variant.reshape("connection", body, connection_id)


def account_json(
    world: FamilyWorld, account: Account, balance: int, coming: int, variant: Variant = DEFAULT
) -> dict[str, Any]:
    currency = CURRENCIES[account.currency]
    body = {
        "id": account.id, "id_connection": account.connection_id, "id_user": account.user_id,
        "id_source": account.connection_id * 10 + 1, "id_parent": account.parent,
        "id_type": TYPES.index("transfer"), "type": account.type, "name": account.name,
        "original_name": account.name.upper(), "number": account.number, "iban": account.iban,
        "bic": "BNPAFRPPXXX" if account.iban else None, "webid": f"w{account.id}",
        "balance": balance / 100, "coming": coming / 100, "coming_balance": (balance + coming) / 100,
        "formatted_balance": f"{balance / 100:.2f} {currency['symbol']}".replace(".", ","),
        "currency": currency,
        "display": True, "bookmarked": False, "usage": "PRIV", "ownership": account.ownership,
        "company_name": None, "opening_date": "2015-03-02",
        "last_update": fmt_now(world.now),
        "deleted": fmt_now(account.deleted) if account.deleted else None,
        "disabled": None, "error": None, "loan": account.loan, "information": {},
    }  # fmt: skip
    return variant.reshape("account", body, account.id)


def accounts_json(
    world: FamilyWorld, user: int, *, include_all: bool, variant: Variant = DEFAULT
) -> dict[str, Any]:
    """`GET /users/{u}/accounts`: deleted accounts only with `all`, with zero balances."""
    items, totals, comings = [], {}, {}
    for account in world.user_accounts(user):
        if account.deleted is not None and not include_all:
            continue
        balance, coming = world.balance_cents(account.id)
        if account.deleted is not None:
            balance, coming = 0, 0
        items.append(account_json(world, account, balance, coming, variant))
        if account.deleted is None:
            totals[account.currency] = totals.get(account.currency, 0) + balance
            comings[account.currency] = comings.get(account.currency, 0) + balance + coming
    return {
        "accounts": items,
        "balance": round(sum(totals.values()) / 100, 2),
        "balances": {k: v / 100 for k, v in totals.items()},
        "coming_balances": {k: v / 100 for k, v in comings.items()},
        "total": len(items),
    }


def malformed_kind(seed: int, rate: float, key: int) -> str | None:
    """Which way the record with this id is malformed, if at all: fixed by the world's seed, so
    the same records are malformed on every read."""
    if rate <= 0:
        return None
    digest = hashlib.blake2b(f"{seed}|bad|{key}".encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    if (value % 1_000_000) / 1_000_000 >= rate:
        return None
    return MALFORMED_KINDS[(value >> 24) % 4]


def transaction_json(
    world: FamilyWorld, i: int, malformed_rate: float = 0.0, variant: Variant = DEFAULT
) -> dict[str, Any]:
    """The Powens transaction object of row `i` (the switches of `variant` applied)."""
    r = world.rows
    tx_id = int(r.id[i])
    merchant = world.merchants[int(r.merchant[i])]
    day = int(r.day[i])
    value = int(r.cents[i]) / 100
    deleted = int(r.deleted[i])
    fx = int(r.fx[i])
    kind = TYPES[int(r.type[i])]
    name = variant.type_names[int(r.type[i])]
    applied = day - (1 if kind in CARD_TYPES else 0)  # a card payment applies when it was made
    counterparty = None
    if merchant.label:
        counterparty = {
            "label": merchant.label,
            "account_scheme_name": "iban" if merchant.iban else None,
            "account_identification": merchant.iban,
            "type": "creditor" if value < 0 else "debtor",
        }
    body = {
        "id": tx_id, "id_account": int(r.account[i]), "application_date": fmt_day(applied),
        "date": fmt_day(day), "rdate": fmt_day(applied),
        "vdate": fmt_day(day + (1 if kind == "transfer" else 0)), "bdate": fmt_day(day),
        "datetime": None, "date_scraped": fmt_ts(r.scraped[i]), "last_update": fmt_ts(r.last_update[i]),
        "value": value, "gross_value": value,
        "original_value": -fx / 100 if fx else None,
        "original_currency": CURRENCIES["USD"] if fx else None,
        "commission": None, "commission_currency": None, "type": name,
        "original_wording": merchant.wording, "simplified_wording": merchant.simplified,
        "stemmed_wording": merchant.simplified.lower(),
        "wording": world.edited.get(tx_id, merchant.simplified),
        "formatted_value": f"{value:.2f} €".replace(".", ","), "coming": bool(r.coming[i]),
        "active": True, "deleted": fmt_ts(deleted) if deleted >= 0 else None,
        "card": "XXXX4242" if kind in CARD_TYPES else None,
        "counterparty": counterparty, "country": None, "comment": None, "id_cluster": None,
        "id_category": 9998, "categories": [], "state": "parsed", "webid": None,
        "documents_count": 0, "information": {},
    }  # fmt: skip
    bad = malformed_kind(world.seed, malformed_rate, tx_id)
    if bad == "missing_id":
        del body["id"]
    elif bad == "non_numeric_value":
        body["value"] = body["formatted_value"]
    elif bad == "impossible_date":
        body["date"] = f"{body['date'][:4]}-02-30"
    elif bad == "unknown_currency":
        body["original_value"] = 10.0
        body["original_currency"] = CURRENCIES["ZZZ"]
    return variant.reshape("transaction", body, tx_id)
