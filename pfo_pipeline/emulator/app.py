"""The emulator's HTTP surface (Starlette): Powens API v2.0 routes, faults, and control routes."""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import secrets
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pfo_pipeline.emulator.churn import churn
from pfo_pipeline.emulator.data import CURRENCIES, TYPES, FamilyWorld, _day, fmt_day, fmt_ts
from pfo_pipeline.webhooks.signature import sign, signature_date

MAX_LIMIT = 1000
PARIS = ZoneInfo("Europe/Paris")
CONNECTORS = [
    {"id": 40, "uuid": "3e1b7c7a-5b1e-4b8e-9a43-2f4cf1c9b040", "name": "Banque Démo", "hidden": False,
     "charged": True, "code": "30004", "beta": False, "color": "0a5ea8", "slug": "DEMO",
     "capabilities": ["bank"], "sync_periodicity": 1, "auth_mechanism": "credentials",
     "urls": {"logo": "https://example.invalid/logos/demo.png"}},
    {"id": 41, "uuid": "9f0f6c0e-7f0e-4bd4-8d0c-3f0a6b1e2041", "name": "Caisse Test", "hidden": False,
     "charged": True, "code": "10278", "beta": True, "color": "d4002a", "slug": "TEST",
     "capabilities": ["bank", "bankwealth"], "sync_periodicity": 1, "auth_mechanism": "webauth"},
]  # fmt: skip
USER_CONNECTIONS = {1: (11, 40), 2: (21, 41)}
HTML_503 = (
    "<html><head><title>503 Service Unavailable</title></head><body><h1>503 Service Unavailable"
    "</h1><p>CloudFront could not reach the origin.</p></body></html>"
)


INTEGER_FAULTS = frozenset({"seed", "churn_per_page"})


class FaultConfigError(ValueError):
    """A fault setting the emulator refuses; `key` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _rate_or_duration(key: str, value: Any, *, upper: float | None) -> float:
    """A finite float >= 0 (and <= `upper`): NaN or "abc" would otherwise fail every request later."""
    expected = "a number in [0, 1]" if upper is not None else "a number of seconds >= 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(key, f"must be {expected}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (upper is not None and number > upper):
        raise FaultConfigError(key, f"must be {expected}, got {value!r}")
    return number


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultConfigError(key, f"must be an integer >= 0, got {value!r}")
    return value


def _connection_states(key: str, value: Any) -> dict[int, str]:
    if not isinstance(value, Mapping):
        raise FaultConfigError(key, f"must map user ids to states, got {value!r}")
    states: dict[int, str] = {}
    for user, state in value.items():
        if isinstance(user, bool) or not isinstance(user, int) or user < 1:
            raise FaultConfigError(key, f"user ids must be integers >= 1, got {user!r}")
        if not isinstance(state, str):
            raise FaultConfigError(key, f"the state of user {user} must be a string, got {state!r}")
        states[user] = state
    return states


def _to_number(
    key: str, raw: str, kind: type[int] | type[float], what: str = "the value"
) -> int | float:
    """CLI text to a number, the error naming the setting (validation happens in FaultConfig)."""
    try:
        return kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise FaultConfigError(key, f"{what} must be {expected}, got {raw!r}") from None


@dataclass
class FaultConfig:
    """Switchable faults; request-level ones are drawn per request from `seed`.

    Validated on construction, so a bad value is refused where it is set (CLI, control route)
    instead of turning every later request into a 500.
    """

    rate_429: float = 0.0
    retry_after_s: float = 0.05
    rate_503: float = 0.0
    rate_slow: float = 0.0
    slow_s: float = 2.0
    rate_token_expiry: float = 0.0
    connection_states: dict[int, str] = field(default_factory=dict)
    rate_malformed: float = 0.0
    # Upstream changes applied before each transactions page after the first (see churn.py).
    churn_per_page: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("rate_"):
                value = _rate_or_duration(f.name, value, upper=1.0)
            elif f.name.endswith("_s"):
                value = _rate_or_duration(f.name, value, upper=None)
            elif f.name in INTEGER_FAULTS:
                value = _count(f.name, value)
            else:
                value = _connection_states(f.name, value)
            setattr(self, f.name, value)

    @classmethod
    def parse(cls, text: str) -> FaultConfig:
        """`rate_429=0.1,rate_503=0.05,connection_states=1:SCARequired` (CLI form)."""
        values: dict[str, Any] = {}
        names = {f.name: f for f in fields(cls)}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, _, raw = item.partition("=")
            if key not in names:
                raise FaultConfigError(key, f"unknown fault; known: {', '.join(names)}")
            if key == "connection_states":
                user, _, state = raw.partition(":")
                values.setdefault(key, {})[_to_number(key, user, int, "a user id")] = state
            else:
                values[key] = _to_number(key, raw, int if key in INTEGER_FAULTS else float)
        return cls(**values)

    @classmethod
    def from_json(cls, body: Any) -> FaultConfig:
        """The control route's JSON object; user ids arrive as strings (JSON object keys)."""
        if not isinstance(body, dict):
            raise FaultConfigError("body", f"must be a JSON object, got {body!r}")
        names = {f.name for f in fields(cls)}
        for key in body:
            if key not in names:
                raise FaultConfigError(key, f"unknown fault; known: {', '.join(sorted(names))}")
        data = dict(body)
        states = data.get("connection_states")
        if isinstance(states, dict):
            data["connection_states"] = {
                _to_number("connection_states", k, int, "a user id") if isinstance(k, str) else k: v
                for k, v in states.items()
            }
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The inverse of `from_json` (JSON object keys are strings, so user ids become strings)."""
        body = asdict(self)
        body["connection_states"] = {str(k): v for k, v in self.connection_states.items()}
        return body


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


class EmulatorApp:
    """Request handling over a `FamilyWorld`; faults and tokens live here, data in the world."""

    def __init__(
        self, world: FamilyWorld, faults: FaultConfig, client_id: str, client_secret: str
    ) -> None:
        self.world = world
        self.faults = faults
        self.client_id = client_id
        self.client_secret = client_secret
        self.random = random.Random(faults.seed)
        self.lock = threading.Lock()
        self.request_id = 0
        self.tokens: dict[str, int] = {world.initial_token(u): u for u in (1, 2)}
        self.codes: dict[str, int] = {}
        self.token_uses: dict[str, int] = {}
        self._index_cache: dict[tuple, tuple[int, np.ndarray]] = {}
        self.webhook_urls: dict[int, str] = {}
        self.webhook_secret: str | None = None
        self.webhooks_sent: list[tuple[str, int]] = []  # (url, HTTP status) of each delivery

    def set_faults(self, faults: FaultConfig) -> None:
        with self.lock:
            self.faults = faults
            self.random = random.Random(faults.seed)

    def token_for(self, user_id: int) -> str:
        with self.lock:
            for token, owner in self.tokens.items():
                if owner == user_id:
                    return token
            return self._issue(user_id)

    def _issue(self, user_id: int) -> str:
        token = secrets.token_urlsafe(24)[:32]
        self.tokens[token] = user_id
        return token

    def _error(self, status: int, code: str, description: str) -> Response:
        with self.lock:
            self.request_id += 1
            rid = self.request_id
        return _json(
            {"code": code, "description": description, "message": None, "request_id": rid}, status
        )

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.random.random() < rate

    async def _transport_faults(self) -> Response | None:
        faults = self.faults
        if self._draw(faults.rate_slow):
            await asyncio.sleep(faults.slow_s)
        if self._draw(faults.rate_429):
            response = self._error(429, "rateLimit", "Too many requests")
            response.headers["Retry-After"] = f"{faults.retry_after_s:g}"
            return response
        if self._draw(faults.rate_503):
            return Response(HTML_503, status_code=503, media_type="text/html")
        return None

    def _authenticate(self, request: Request) -> int | Response:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        with self.lock:
            user = self.tokens.get(token) if token else None
        if user is None:
            return self._error(401, "invalidToken", "Missing or invalid bearer token")
        with self.lock:
            used = self.token_uses.get(token, 0)
            self.token_uses[token] = used + 1
        # A token never expires on its very first use: a renewed token always gets one request.
        if used and self._draw(self.faults.rate_token_expiry):
            with self.lock:
                for known in [t for t, u in self.tokens.items() if u == user]:
                    del self.tokens[known]
            return self._error(401, "invalidToken", "Token expired")
        segment = request.path_params.get("user")
        if segment is not None and segment != "me" and segment != str(user):
            return self._error(403, "forbidden", "This token cannot access that user")
        return user

    async def _guard(self, request: Request) -> int | Response:
        fault = await self._transport_faults()
        if fault is not None:
            return fault
        return self._authenticate(request)

    # --- routes ----------------------------------------------------------------------------

    async def renew(self, request: Request) -> Response:
        raw = await request.body()
        fault = await self._transport_faults()
        if fault is not None:
            return fault
        try:
            # Powens takes JSON or a urlencoded form; the stdlib parses the latter (Starlette's
            # form parser would need python-multipart for no gain).
            body = (
                orjson.loads(raw)
                if raw.strip()[:1] in (b"{", b"[")
                else dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=False))
            )
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            return self._error(400, "invalidValue", "Body is neither JSON nor a form")
        if not isinstance(body, dict):
            return self._error(400, "invalidValue", "Body is not an object")
        if (
            body.get("client_id") != self.client_id
            or body.get("client_secret") != self.client_secret
        ):
            return self._error(401, "invalidClient", "Unknown client or wrong secret")
        try:
            user = int(body.get("id_user"))
        except (TypeError, ValueError):
            return self._error(400, "missingParameter", "id_user is required")
        if user not in USER_CONNECTIONS:
            return self._error(404, "notFound", "User not found")
        with self.lock:
            if str(body.get("revoke_previous")).lower() in ("true", "1"):
                for known in [t for t, u in self.tokens.items() if u == user]:
                    del self.tokens[known]
            token = self._issue(user)
        return _json({"access_token": token, "token_type": "Bearer"})

    async def token_code(self, request: Request) -> Response:
        user = await self._guard(request)
        if isinstance(user, Response):
            return user
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = user
        return _json({"code": code, "type": "temporary", "access": "single", "expires_in": 1800})

    async def user(self, request: Request) -> Response:
        user = await self._guard(request)
        if isinstance(user, Response):
            return user
        return _json({"id": user, "signin": "2023-01-15 10:00:00", "platform": "sharedAccess"})

    async def connectors(self, request: Request) -> Response:
        fault = await self._transport_faults()
        return fault or _json({"connectors": CONNECTORS, "total": len(CONNECTORS)})

    def _connection(self, user: int, expand: bool) -> dict[str, Any]:
        connection_id, connector_id = USER_CONNECTIONS[user]
        now = self.world.now
        state = self.faults.connection_states.get(user)
        body = {
            "id": connection_id, "id_user": user, "id_connector": connector_id,
            "connector_uuid": next(c["uuid"] for c in CONNECTORS if c["id"] == connector_id),
            "state": state, "error": state,
            "error_message": f"Reconnect at https://bank.example.invalid/auth?state=x{user}" if state else None,
            "last_update": now.strftime("%Y-%m-%d %H:%M:%S"), "created": "2023-01-15 10:05:00",
            "active": True, "last_push": None,
            "expire": (now + timedelta(days=90)).strftime("%Y-%m-%d %H:%M:%S"), "next_try": None,
        }  # fmt: skip
        if expand:
            body["connector"] = next(c for c in CONNECTORS if c["id"] == connector_id)
        return body

    async def connections(self, request: Request) -> Response:
        user = await self._guard(request)
        if isinstance(user, Response):
            return user
        expand = "connector" in request.query_params.get("expand", "")
        return _json({"connections": [self._connection(user, expand)], "total": 1})

    async def accounts(self, request: Request) -> Response:
        user = await self._guard(request)
        if isinstance(user, Response):
            return user
        include_all = "all" in request.query_params
        world = self.world
        with world.lock:
            items, totals, comings = [], {}, {}
            for account in world.user_accounts(user):
                if account.deleted is not None and not include_all:
                    continue
                balance, coming = world.balance_cents(account.id)
                if account.deleted is not None:
                    balance, coming = 0, 0
                item = self._account_json(account, balance, coming)
                items.append(item)
                if account.deleted is None:
                    totals[account.currency] = totals.get(account.currency, 0) + balance
                    comings[account.currency] = comings.get(account.currency, 0) + balance + coming
        return _json({
            "accounts": items,
            "balance": round(sum(totals.values()) / 100, 2),
            "balances": {k: v / 100 for k, v in totals.items()},
            "coming_balances": {k: v / 100 for k, v in comings.items()},
            "total": len(items),
        })  # fmt: skip

    def _account_json(self, account: Any, balance: int, coming: int) -> dict[str, Any]:
        world = self.world
        currency = CURRENCIES[account.currency]
        return {
            "id": account.id, "id_connection": account.connection_id, "id_user": account.user_id,
            "id_source": account.connection_id * 10 + 1, "id_parent": account.parent,
            "id_type": TYPES.index("transfer"), "type": account.type, "name": account.name,
            "original_name": account.name.upper(), "number": account.number, "iban": account.iban,
            "bic": "BNPAFRPPXXX" if account.iban else None, "webid": f"w{account.id}",
            "balance": balance / 100, "coming": coming / 100, "coming_balance": (balance + coming) / 100,
            "formatted_balance": f"{balance / 100:.2f} {currency['symbol']}".replace(".", ","),
            "currency": currency,
            "display": True, "bookmarked": 0, "usage": "PRIV", "ownership": account.ownership,
            "company_name": None, "opening_date": "2015-03-02",
            "last_update": world.now.strftime("%Y-%m-%d %H:%M:%S"),
            "deleted": account.deleted.strftime("%Y-%m-%d %H:%M:%S") if account.deleted else None,
            "disabled": None, "error": None, "loan": account.loan, "information": {},
        }  # fmt: skip

    def _malformed_kind(self, key: int) -> str | None:
        rate = self.faults.rate_malformed
        if rate <= 0:
            return None
        digest = hashlib.blake2b(f"{self.world.seed}|bad|{key}".encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "big")
        if (value % 1_000_000) / 1_000_000 >= rate:
            return None
        return ("missing_id", "non_numeric_value", "impossible_date", "unknown_currency")[
            (value >> 24) % 4
        ]

    def _matching(
        self, user: int, include_all: bool, last_update: int | None, lo: int | None, hi: int | None
    ) -> np.ndarray:
        key = (user, include_all, last_update, lo, hi)
        cached = self._index_cache.get(key)
        world = self.world
        if cached is not None and cached[0] == world.version:
            return cached[1]
        r = world.rows
        mask = np.isin(r.account, world.user_account_ids(user))
        if not include_all:
            mask &= r.deleted < 0
        if last_update is not None:
            mask &= r.last_update > last_update
        if lo is not None:
            mask &= r.day >= lo
        if hi is not None:
            mask &= r.day <= hi
        index = np.flatnonzero(mask)
        order = np.lexsort((-r.id[index], -r.day[index].astype(np.int64)))
        index = index[order]
        if len(self._index_cache) > 64:
            self._index_cache.clear()
        self._index_cache[key] = (world.version, index)
        return index

    async def transactions(self, request: Request) -> Response:
        user = await self._guard(request)
        if isinstance(user, Response):
            return user
        params = request.query_params
        if "limit" not in params:
            return self._error(400, "missingParameter", "limit is required")
        try:
            limit = int(params["limit"])
            offset = int(params.get("offset", "0"))
            last_update = _parse_ts(params.get("last_update"))
            lo = _parse_day(params.get("min_date"))
            hi = _parse_day(params.get("max_date"))
        except ValueError as exc:
            return self._error(400, "invalidValue", str(exc))
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return self._error(400, "invalidValue", f"limit must be between 1 and {MAX_LIMIT}")
        world = self.world
        if offset > 0 and self.faults.churn_per_page:
            churn(world, self.faults.churn_per_page)
        with world.lock:
            index = self._matching(user, "all" in params, last_update, lo, hi)
            page = index[offset : offset + limit]
            items = [self._transaction_json(int(i)) for i in page]
            r = world.rows
            user_days = r.day[np.isin(r.account, world.user_account_ids(user))]
            first = fmt_day(user_days.min()) if len(user_days) else None
            last = fmt_day(user_days.max()) if len(user_days) else None
            result_days = r.day[page]
        total = len(index)

        def link(new_offset: int) -> dict[str, str]:
            query = dict(params)
            query["offset"] = str(new_offset)
            return {"href": str(request.url.include_query_params(**query))}

        return _json({
            "transactions": items,
            "first_date": first,
            "last_date": last,
            "result_min_date": fmt_day(result_days.min()) if len(result_days) else None,
            "result_max_date": fmt_day(result_days.max()) if len(result_days) else None,
            "total": total,
            "_links": {
                "self": {"href": str(request.url)},
                "next": link(offset + limit) if offset + limit < total else None,
                "prev": link(max(0, offset - limit)) if offset > 0 else None,
            },
        })  # fmt: skip

    def _transaction_json(self, i: int) -> dict[str, Any]:
        w = self.world
        r = w.rows
        tx_id = int(r.id[i])
        merchant = w.merchants[int(r.merchant[i])]
        day = int(r.day[i])
        value = int(r.cents[i]) / 100
        deleted = int(r.deleted[i])
        fx = int(r.fx[i])
        kind = TYPES[int(r.type[i])]
        wording = w.edited.get(tx_id, merchant.simplified)
        counterparty = None
        if merchant.label:
            counterparty = {
                "label": merchant.label,
                "account_scheme_name": "iban" if merchant.iban else None,
                "account_identification": merchant.iban,
                "type": "creditor" if value < 0 else "debtor",
            }
        body = {
            "id": tx_id, "id_account": int(r.account[i]), "application_date": fmt_day(day),
            "date": fmt_day(day), "rdate": fmt_day(day - (1 if kind in ("card", "deferred_card") else 0)),
            "vdate": fmt_day(day + (1 if kind == "transfer" else 0)), "bdate": fmt_day(day),
            "datetime": None, "date_scraped": fmt_ts(r.scraped[i]), "last_update": fmt_ts(r.last_update[i]),
            "value": value, "gross_value": value,
            "original_value": -fx / 100 if fx else None,
            "original_currency": CURRENCIES["USD"] if fx else None,
            "commission": None, "commission_currency": None, "type": kind,
            "original_wording": merchant.wording, "simplified_wording": merchant.simplified,
            "stemmed_wording": merchant.simplified.lower(), "wording": wording,
            "formatted_value": f"{value:.2f} €".replace(".", ","), "coming": bool(r.coming[i]),
            "active": True, "deleted": fmt_ts(deleted) if deleted >= 0 else None,
            "card": "XXXX4242" if kind in ("card", "deferred_card") else None,
            "counterparty": counterparty, "country": None, "comment": None, "id_cluster": None,
            "id_category": 9998, "categories": [], "state": "parsed", "webid": None,
            "documents_count": 0, "information": {},
        }  # fmt: skip
        kind_bad = self._malformed_kind(tx_id)
        if kind_bad == "missing_id":
            del body["id"]
        elif kind_bad == "non_numeric_value":
            body["value"] = body["formatted_value"]
        elif kind_bad == "impossible_date":
            body["date"] = f"{body['date'][:4]}-02-30"
        elif kind_bad == "unknown_currency":
            body["original_value"] = 10.0
            body["original_currency"] = CURRENCIES["ZZZ"]
        return body

    # --- clock and webhooks ------------------------------------------------------------------

    def advance(self, days: int) -> dict[str, Any]:
        """Advance the world, then push a signed CONNECTION_SYNCED to every configured receiver."""
        since = _parse_ts(self.world.now.strftime("%Y-%m-%d %H:%M:%S"))
        summary = self.world.advance(days)
        for user, url in self.webhook_urls.items():
            self._send_connection_synced(user, url, since)
        return summary

    def _send_connection_synced(self, user: int, url: str, since: int | None) -> None:
        world = self.world
        with world.lock:
            rows = world.rows
            changed = self._matching(user, True, since, None, None)
            by_account: dict[int, list[dict[str, Any]]] = {}
            for i in changed:
                by_account.setdefault(int(rows.account[i]), []).append(
                    self._transaction_json(int(i))
                )
            accounts = []
            for account in world.user_accounts(user):
                balance, coming = world.balance_cents(account.id)
                item = self._account_json(account, balance, coming)
                item["transactions"] = by_account.get(account.id, [])
                accounts.append(item)
        connection = self._connection(user, expand=False)
        connection["accounts"] = accounts
        body = orjson.dumps(
            {"user": {"id": user, "platform": "sharedAccess"}, "connection": connection}
        )
        date = signature_date()
        path = httpx.URL(url).path
        headers = {"Content-Type": "application/json", "BI-Signature-Date": date}
        if self.webhook_secret:
            headers["BI-Signature"] = sign(self.webhook_secret, "POST", path, date, body)
        try:
            status = httpx.post(url, content=body, headers=headers, timeout=10).status_code
        except httpx.TransportError:
            status = 0  # Powens resends at the next synchronisation; so does the emulator
        self.webhooks_sent.append((url, status))

    # --- control ---------------------------------------------------------------------------

    async def control_advance(self, request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        return _json(self.advance(int(body.get("days", 1))))

    async def control_faults(self, request: Request) -> Response:
        """Replace the faults; a bad setting is a 400 naming it, and the old faults stay."""
        try:
            faults = FaultConfig.from_json(orjson.loads(await request.body() or b"{}"))
        except orjson.JSONDecodeError:
            return _json({"code": "invalidValue", "key": "body", "description": "not JSON"}, 400)
        except FaultConfigError as exc:
            return _json({"code": "invalidValue", "key": exc.key, "description": str(exc)}, 400)
        self.set_faults(faults)
        return _json(faults.to_json())

    async def control_state(self, request: Request) -> Response:
        world = self.world
        with world.lock:
            rows = world.rows
            body = {
                "now": world.now.strftime("%Y-%m-%d %H:%M:%S"),
                "transactions": len(rows),
                "deleted": int((rows.deleted >= 0).sum()),
                "coming": int(rows.coming.sum()),
                "renumbered": list(world.renumbered) if world.renumbered else None,
                "faults": self.faults.to_json(),
            }
        return _json(body)


def _parse_ts(value: str | None) -> int | None:
    if not value:
        return None
    from datetime import datetime

    parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    return int((parsed - datetime(1970, 1, 1)).total_seconds())


def _parse_day(value: str | None) -> int | None:
    if not value:
        return None
    if len(value) == 7:
        value += "-01"
    return _day(date.fromisoformat(value))


def create_app(emulator: EmulatorApp) -> Starlette:
    e = emulator
    prefix = "/2.0"
    routes = [
        Route(f"{prefix}/auth/renew", e.renew, methods=["POST"]),
        Route(f"{prefix}/auth/token/code", e.token_code, methods=["GET"]),
        Route(f"{prefix}/connectors", e.connectors, methods=["GET"]),
        Route(f"{prefix}/users/{{user}}", e.user, methods=["GET"]),
        Route(f"{prefix}/users/{{user}}/connections", e.connections, methods=["GET"]),
        Route(f"{prefix}/users/{{user}}/accounts", e.accounts, methods=["GET"]),
        Route(f"{prefix}/users/{{user}}/transactions", e.transactions, methods=["GET"]),
        Route(f"{prefix}/__emulator/advance", e.control_advance, methods=["POST"]),
        Route(f"{prefix}/__emulator/faults", e.control_faults, methods=["POST"]),
        Route(f"{prefix}/__emulator/state", e.control_state, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(PowensClockDate, world=e.world)])


class PowensClockDate:
    """`Date` tells Powens' clock (the emulator's, which tests fix and move), as Powens' own
    `Date` header tells its server time: clients bound their incremental cursors by it."""

    def __init__(self, app: ASGIApp, world: FamilyWorld) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_date(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", http_date(self.world.now).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_date)


def http_date(paris_wall_clock: datetime) -> str:
    """An RFC 9110 `Date` value for a naive Europe/Paris time."""
    aware = paris_wall_clock.replace(tzinfo=PARIS)
    return format_datetime(aware.astimezone(UTC), usegmt=True)
