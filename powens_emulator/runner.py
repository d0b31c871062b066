"""Start the emulator in-process (tests, demo) or in the foreground (`pfo emulator serve`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from powens_emulator.app import EmulatorApp
from powens_emulator.clock import PARIS
from powens_emulator.credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from powens_emulator.data import FamilyWorld
from powens_emulator.faults import FaultConfig
from powens_emulator.middleware import Traffic
from powens_emulator.routes import create_app
from powens_emulator.server import ServerThread, serve_in_foreground


@dataclass
class EmulatorConfig:
    seed: int = 42
    transactions: int = 6000
    history_days: int = 3 * 365
    now: datetime | None = None  # naive Europe/Paris; default today 08:00
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    # Faults and latency (`FaultConfig(latency_ms=200, jitter_ms=50)`); changeable while serving.
    faults: FaultConfig = field(default_factory=FaultConfig)
    # Powens user id -> URL that receives a signed CONNECTION_SYNCED after each clock advance.
    webhook_urls: dict[int, str] = field(default_factory=dict)
    webhook_secret: str | None = None
    family: str = "base"  # "labelled": planted commitments and anomalies (labelled_family.py)


def default_now() -> datetime:
    today = datetime.now(PARIS).date()
    return datetime(today.year, today.month, today.day, 8, 0, 0)


def build_emulator(config: EmulatorConfig) -> EmulatorApp:
    world_class = FamilyWorld
    if config.family == "labelled":
        from powens_emulator.labelled_family import LabelledFamilyWorld as world_class
    world = world_class(
        seed=config.seed,
        transactions=config.transactions,
        history_days=config.history_days,
        now=config.now or default_now(),
    )
    emulator = EmulatorApp(world, config.faults, config.client_id, config.client_secret)
    emulator.webhook_urls = dict(config.webhook_urls)
    emulator.webhook_secret = config.webhook_secret
    return emulator


class EmulatorHandle:
    """A running emulator: its base URL, its state, and the control calls tests use."""

    def __init__(self, emulator: EmulatorApp, server: ServerThread) -> None:
        self.emulator = emulator
        self.state = emulator.world
        self._server = server
        self.port = server.port
        self.base_url = f"http://127.0.0.1:{server.port}/2.0"

    @property
    def traffic(self) -> Traffic:
        """Requests served, in flight (now and at most at once) and the latency applied."""
        return self.emulator.traffic

    def token_for(self, user_id: int) -> str:
        return self.emulator.token_for(user_id)

    def advance(self, days: int = 1) -> dict[str, Any]:
        return self.emulator.advance(days)

    def set_faults(self, faults: FaultConfig) -> None:
        self.emulator.set_faults(faults)

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorHandle(base_url={self.base_url!r})"


def start_emulator(config: EmulatorConfig | None = None, port: int = 0) -> EmulatorHandle:
    """Serve on 127.0.0.1 from a background thread; returns once the socket accepts."""
    emulator = build_emulator(config or EmulatorConfig())
    return EmulatorHandle(emulator, ServerThread(create_app(emulator), port).start())


def serve_forever(config: EmulatorConfig, port: int) -> None:
    serve_in_foreground(create_app(build_emulator(config)), port)
