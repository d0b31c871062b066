"""ASGI middleware of the emulator: Powens' latency and the traffic it records, and the `Date`
header telling the emulator's clock."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from powens_emulator.clock import http_date
from powens_emulator.data import FamilyWorld

CONTROL_PREFIX = "/2.0/__emulator/"


@dataclass
class Traffic:
    """What the Powens routes were asked (control routes are not counted): requests served,
    requests in flight now and at most at once, and the latency applied to each request."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    delays_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def enter(self) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def reset(self) -> None:
        """Forget the counts (the requests in flight stay in flight)."""
        with self.lock:
            self.requests = 0
            self.max_in_flight = self.in_flight
            self.delays_ms.clear()

    def to_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "delays_ms": list(self.delays_ms),
            }


class PowensLatency:
    """Delays each Powens request by `delay_ms()` with an async sleep (other requests go on
    meanwhile), and records it and the concurrency in `traffic`."""

    def __init__(
        self,
        app: ASGIApp,
        traffic: Traffic,
        delay_ms: Callable[[], float],
        sleep: Callable[[], Callable[[float], Awaitable[Any]]],
    ) -> None:
        self.app = app
        self.traffic = traffic
        self.delay_ms = delay_ms
        self.sleep = sleep  # looked up per request, so a test can swap the emulator's clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        self.traffic.enter()
        try:
            delay = self.delay_ms()
            self.traffic.delays_ms.append(delay)
            if delay > 0:
                await self.sleep()(delay / 1000)
            await self.app(scope, receive, send)
        finally:
            self.traffic.leave()


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
