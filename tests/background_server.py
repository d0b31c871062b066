"""Serve an ASGI app with uvicorn from a background thread on loopback (the tests' webhook receiver)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import uvicorn


@dataclass
class BackgroundServer:
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(
    app: object, port: int = 0, host: str = "127.0.0.1", *, date_header: bool = True
) -> BackgroundServer:
    """Bind first (port 0 picks a free one), then serve; returns once the socket accepts.
    `date_header=False` leaves the `Date` header to the app (the emulator tells its own clock)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", date_header=date_header
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    return BackgroundServer(server, thread, sock.getsockname()[1])
