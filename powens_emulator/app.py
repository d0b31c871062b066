"""The emulator's request-level state: the world, the faults in force, tokens, traffic and
webhook receivers, and the checks every Powens route makes (faults, then bearer auth)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from powens_emulator import webhooks
from powens_emulator.auth import TokenStore, bearer
from powens_emulator.clock import fmt_now, parse_ts
from powens_emulator.data import FamilyWorld
from powens_emulator.faults import FaultConfig, FaultConfigError
from powens_emulator.middleware import Traffic
from powens_emulator.pages import TransactionIndex
from powens_emulator.shaping import json_response

HTML_503 = (
    "<html><head><title>503 Service Unavailable</title></head><body><h1>503 Service Unavailable"
    "</h1><p>CloudFront could not reach the origin.</p></body></html>"
)
USERS = (1, 2)
# The code each error is known by (docs.powens.com, integrators: docs/powens-api.md §6) -> the
# nearest value of S3's `ServiceErrorCode` enum, which the emulator's error bodies follow.
SPEC_CODE = {
    "rateLimit": "tooManySync",
    "invalidToken": "forbidden",
    "invalidClient": "forbidden",
    "forbidden": "forbidden",
    "notFound": "forbidden",
    "invalidValue": "notSupported",
    "missingParameter": "notSupported",
    "noAccount": "noAccount",
}

__all__ = ["EmulatorApp", "FaultConfig", "FaultConfigError"]


def unit_interval(seed: int, stream: str, n: int) -> float:
    """The n-th number in [0, 1) of a named stream: fixed by the seed, independent of any other
    draw and of the order in which concurrent requests arrive."""
    digest = hashlib.blake2b(f"{seed}|{stream}|{n}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


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
        self.latency_draws = 0
        self.tokens = TokenStore({world.initial_token(u): u for u in USERS})
        self.index = TransactionIndex(world)
        self.traffic = Traffic()
        # The latency's clock: tests may swap in a fake one (an async callable taking seconds).
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        self.webhook_urls: dict[int, str] = {}
        self.webhook_secret: str | None = None
        self.webhooks_sent: list[tuple[str, int]] = []  # (url, HTTP status) of each delivery
        # Transactions list requests since the faults were last set, and the once-only changes
        # made since then (`churn.backdated_import`, `churn.late_change`).
        self.listings_served = 0
        self.once_done: set[str] = set()

    def set_faults(self, faults: FaultConfig) -> None:
        with self.lock:
            self.faults = faults
            self.random = random.Random(faults.seed)
            self.latency_draws = 0
            self.listings_served = 0
            self.once_done = set()

    def once(self, what: str) -> bool:
        """True the first time `what` is asked since the faults were set."""
        with self.lock:
            if what in self.once_done:
                return False
            self.once_done.add(what)
            return True

    def token_for(self, user_id: int) -> str:
        return self.tokens.token_for(user_id)

    # --- faults ----------------------------------------------------------------------------

    def next_delay_ms(self) -> float:
        """The latency of the next Powens request: fixed part + seeded jitter."""
        with self.lock:
            faults, n = self.faults, self.latency_draws
            self.latency_draws += 1
        if faults.jitter_ms <= 0:
            return faults.latency_ms
        return faults.latency_ms + faults.jitter_ms * unit_interval(faults.seed, "latency", n)

    def draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.random.random() < rate

    def error(self, status: int, code: str, description: str) -> Response:
        """Powens' error body (S3 `ServiceError`: an enum `code`, `request_id` a string), with a
        request id of its own."""
        with self.lock:
            self.request_id += 1
            rid = self.request_id
        body = {
            "code": SPEC_CODE.get(code, code),
            "description": description,
            "message": None,
            "request_id": f"emu-{rid}",
        }
        return json_response(body, status)

    async def transport_faults(self) -> Response | None:
        """A slow answer, a 429 or a CloudFront 503, each drawn in this order per request."""
        faults = self.faults
        if self.draw(faults.rate_slow):
            await asyncio.sleep(faults.slow_s)
        if self.draw(faults.rate_429):
            response = self.error(429, "rateLimit", "Too many requests")
            response.headers["Retry-After"] = f"{faults.retry_after_s:g}"
            return response
        if self.draw(faults.rate_503):
            return Response(HTML_503, status_code=503, media_type="text/html")
        return None

    def authenticate(self, request: Request) -> int | Response:
        """The user of the request's bearer token, or the 401/403 Powens answers."""
        token = bearer(request.headers.get("authorization", ""))
        user = self.tokens.owner(token)
        if token is None or user is None:
            return self.error(401, "invalidToken", "Missing or invalid bearer token")
        used = self.tokens.use(token)
        # A token never expires on its very first use: a renewed token always gets one request.
        if used and self.draw(self.faults.rate_token_expiry):
            self.tokens.revoke(user)
            return self.error(401, "invalidToken", "Token expired")
        segment = request.path_params.get("user")
        if segment is not None and segment != "me" and segment != str(user):
            return self.error(403, "forbidden", "This token cannot access that user")
        return user

    async def guard(self, request: Request) -> int | Response:
        """Transport faults first, then authentication: the user, or the response to send."""
        fault = await self.transport_faults()
        if fault is not None:
            return fault
        return self.authenticate(request)

    # --- the clock and webhooks ------------------------------------------------------------

    def advance(self, days: int) -> dict[str, Any]:
        """Advance the world, then push a signed CONNECTION_SYNCED to every configured receiver."""
        since = parse_ts(fmt_now(self.world.now))
        summary = self.world.advance(days)
        for user, url in self.webhook_urls.items():
            faults = self.faults
            state = faults.connection_states.get(user)
            body = webhooks.connection_synced(self.index, user, since, state, faults.rate_malformed)
            self.webhooks_sent.append((url, webhooks.deliver(url, body, self.webhook_secret)))
        return summary
