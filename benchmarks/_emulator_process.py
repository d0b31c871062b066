"""Run the emulator in its own process (its own core), as the benchmarks' upstream on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def emulator_process(transactions: int, seed: int = 42, timeout_s: float = 300) -> Iterator[str]:
    """Start `pfo emulator serve` and yield its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pfo_pipeline.cli",
            "emulator",
            "serve",
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--transactions",
            str(transactions),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/2.0"
    try:
        wait_until_up(f"{base_url}/connectors", proc, timeout_s=timeout_s)
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    """Poll `url` until it answers 200; fail if the process dies or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.3)


def set_latency(base_url: str, latency_ms: float) -> None:
    """Ask the emulator to answer every request `latency_ms` late (its `latency_ms` setting, on
    the faults control route); exits with the emulator's own message if it does not know it."""
    response = httpx.post(f"{base_url}/__emulator/faults", json={"latency_ms": latency_ms})
    if response.status_code != 200:
        detail = response.json().get("description", response.text)
        raise SystemExit(f"the emulator refused latency_ms={latency_ms:g}: {detail}")


def renew_token(base_url: str, user_id: int = 1) -> str:
    response = httpx.post(
        f"{base_url}/auth/renew",
        json={
            "client_id": "pfo-demo-client",
            "client_secret": "pfo-demo-secret",
            "id_user": user_id,
        },
    )
    response.raise_for_status()
    return response.json()["access_token"]
