"""Webhook pushes: after each clock advance, a signed CONNECTION_SYNCED to every receiver, carrying
the user's accounts and the transactions that changed (docs/powens-api.md §8.2)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from powens_emulator.data import FamilyWorld
from powens_emulator.pages import Filter, TransactionIndex
from powens_emulator.shaping import account_json, connection_json, transaction_json
from powens_emulator.signing import signed_headers


def connection_synced(
    index: TransactionIndex, user: int, since: int | None, state: str | None, malformed_rate: float
) -> bytes:
    """The CONNECTION_SYNCED body: every account of the user with the rows changed after `since`."""
    world: FamilyWorld = index.world
    with world.lock:
        rows = world.rows
        changed = index.matching(Filter(user, include_all=True, last_update=since))
        by_account: dict[int, list[dict[str, Any]]] = {}
        for i in changed:
            by_account.setdefault(int(rows.account[i]), []).append(
                transaction_json(world, int(i), malformed_rate)
            )
        accounts = []
        for account in world.user_accounts(user):
            balance, coming = world.balance_cents(account.id)
            item = account_json(world, account, balance, coming)
            item["transactions"] = by_account.get(account.id, [])
            accounts.append(item)
    connection = connection_json(world, user, state, expand=False)
    connection["accounts"] = accounts
    return orjson.dumps(
        {"user": {"id": user, "platform": "sharedAccess"}, "connection": connection}
    )


def deliver(url: str, body: bytes, secret: str | None) -> int:
    """POST the push; its HTTP status, or 0 when the receiver could not be reached (Powens sends
    it again at the next synchronisation; so does the emulator)."""
    try:
        return httpx.post(
            url, content=body, headers=signed_headers(secret, url, body), timeout=10
        ).status_code
    except httpx.TransportError:
        return 0
