"""The demo's Powens emulator as a program of its own (`python -m powens_emulator serve`): started,
waited for until it answers, and stopped when the demo ends, however it ends (done, failed,
Ctrl-C, SIGTERM): terminated, then killed after a grace period.

`pfo_pipeline` never imports the emulator (a package beside the product): like any user, it runs
it and talks HTTP to it. Its output goes to a temporary file, shown only if it fails to start.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import httpx

HOST = "127.0.0.1"
# The command line and environment `python -m powens_emulator serve` understands.
EMULATOR_COMMAND = (sys.executable, "-m", "powens_emulator", "serve")
CLIENT_SECRET_ENV = "POWENS_EMULATOR_CLIENT_SECRET"
# Generating a large history takes a while; a process that dies is reported at once anyway.
START_TIMEOUT_S = 300.0
STOP_GRACE_S = 10.0
POLL_S = 0.1
OUTPUT_TAIL_CHARS = 2000


class EmulatorStartError(RuntimeError):
    """The emulator did not come up: its port is taken, it exited, or it never answered."""


@dataclass(frozen=True)
class EmulatorProcess:
    base_url: str
    process: subprocess.Popen


@contextmanager
def emulator_process(
    *,
    port: int,
    seed: int,
    transactions: int,
    client_id: str,
    client_secret: str,
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[EmulatorProcess]:
    """Serve the emulator on `port` (0: a free one) in its own process until the block ends."""
    port = port or free_port()
    _check_port_free(port)
    base_url = f"http://{HOST}:{port}/2.0"
    command = [*EMULATOR_COMMAND, "--port", str(port), "--seed", str(seed)]
    command += ["--transactions", str(transactions), "--client-id", client_id]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, CLIENT_SECRET_ENV: client_secret},
        )
        try:
            with _sigterm_as_interrupt():
                _wait_until_answering(base_url, process, output, start_timeout_s)
                yield EmulatorProcess(base_url, process)
        finally:
            stop(process)


def stop(process: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """Terminate, then kill if it is still there after `grace_s`; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _check_port_free(port: int) -> None:
    """Refuse a taken port before starting: an emulator already there would answer the demo's
    calls in place of the one it starts. Bound as uvicorn binds (SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc})"
            raise EmulatorStartError(
                f"port {port} on {HOST} {reason}: pass another with --port"
            ) from None


def _wait_until_answering(
    base_url: str, process: subprocess.Popen, output: IO[bytes], timeout_s: float
) -> None:
    """Poll `GET /connectors` until it answers 200; fail at once if the process exits."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise EmulatorStartError(
                    f"the emulator exited with code {process.returncode} before answering:\n"
                    + _tail(output)
                )
            try:
                if client.get(f"{base_url}/connectors").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise EmulatorStartError(
                    f"the emulator did not answer on {base_url} within {timeout_s:g} s:\n"
                    + _tail(output)
                )
            time.sleep(POLL_S)


def _tail(output: IO[bytes]) -> str:
    output.seek(0)
    text = output.read().decode(errors="replace")
    return text[-OUTPUT_TAIL_CHARS:].strip() or "(no output)"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises as Ctrl-C does while the emulator runs, so `stop` runs before the demo
    exits (the default action would end the demo at once and leave the emulator on its port).
    Dagster maps SIGTERM the same way while it executes a run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
