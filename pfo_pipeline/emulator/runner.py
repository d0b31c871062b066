"""Start the emulator in-process (tests, demo) or in the foreground (`pfo emulator serve`)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn

from pfo_pipeline.emulator.app import EmulatorApp, FaultConfig, create_app
from pfo_pipeline.emulator.data import FamilyWorld


@dataclass
class EmulatorConfig:
    seed: int = 42
    transactions: int = 6000
    history_days: int = 3 * 365
    now: datetime | None = None  # naive Europe/Paris; default today 08:00
    client_id: str = "pfo-demo-client"
    client_secret: str = "pfo-demo-secret"
    faults: FaultConfig = field(default_factory=FaultConfig)


def default_now() -> datetime:
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    return datetime(today.year, today.month, today.day, 8, 0, 0)


def build_emulator(config: EmulatorConfig) -> EmulatorApp:
    world = FamilyWorld(
        seed=config.seed,
        transactions=config.transactions,
        history_days=config.history_days,
        now=config.now or default_now(),
    )
    return EmulatorApp(world, config.faults, config.client_id, config.client_secret)


class EmulatorHandle:
    """A running emulator: its base URL, its state, and the control calls tests use."""

    def __init__(
        self, emulator: EmulatorApp, server: uvicorn.Server, thread: threading.Thread, port: int
    ):
        self.emulator = emulator
        self.state = emulator.world
        self._server = server
        self._thread = thread
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/2.0"

    def token_for(self, user_id: int) -> str:
        return self.emulator.token_for(user_id)

    def advance(self, days: int = 1) -> dict[str, Any]:
        return self.state.advance(days)

    def set_faults(self, faults: FaultConfig) -> None:
        self.emulator.set_faults(faults)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorHandle(base_url={self.base_url!r})"


def start_emulator(config: EmulatorConfig | None = None, port: int = 0) -> EmulatorHandle:
    """Serve on 127.0.0.1 from a background thread; returns once the socket accepts."""
    emulator = build_emulator(config or EmulatorConfig())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(emulator), log_level="warning", access_log=False, lifespan="off")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.01)
    return EmulatorHandle(emulator, server, thread, bound_port)


def serve_forever(config: EmulatorConfig, port: int) -> None:
    emulator = build_emulator(config)
    uvicorn.run(
        create_app(emulator), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
