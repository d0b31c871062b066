"""Serve the emulator's ASGI app with uvicorn on loopback, in a background thread or in the
foreground. The `Date` header is left to the app (it tells the emulator's clock)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

HOST = "127.0.0.1"
START_TIMEOUT_S = 30


def _config(app: object, **extra: object) -> uvicorn.Config:
    return uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", date_header=False, **extra
    )


class ServerThread:
    """A uvicorn server running in a daemon thread; `stop()` ends it."""

    def __init__(self, app: object, port: int = 0) -> None:
        # Bind first (port 0 picks a free one), so the port is known before serving.
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((HOST, port))
        self.port: int = self.socket.getsockname()[1]
        self.server = uvicorn.Server(_config(app))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def start(self) -> ServerThread:
        """Start serving; returns once the socket accepts."""
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_foreground(app: object, port: int) -> None:
    uvicorn.Server(_config(app, host=HOST, port=port)).run()
