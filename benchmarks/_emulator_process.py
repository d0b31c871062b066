"""Run the emulator in its own process (its own core), as the benchmarks' upstream on loopback."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from pfo_pipeline.emulator_process import emulator_process as demo_emulator_process
from pfo_pipeline.emulator_process import free_port
from pfo_pipeline.settings import DEMO_ENV

__all__ = ["emulator_process", "free_port", "renew_token", "set_latency", "wait_until_up"]

DEMO_CLIENT_ID = DEMO_ENV["PFO_DEMO_POWENS_CLIENT_ID"]
DEMO_CLIENT_SECRET = DEMO_ENV["PFO_DEMO_POWENS_CLIENT_SECRET"]


@contextmanager
def emulator_process(transactions: int, seed: int = 42, timeout_s: float = 300) -> Iterator[str]:
    """Start `python -m powens_emulator serve` on a free port (the demo's way, with the demo
    credentials) and yield its base URL once it answers; stopped when the block ends."""
    with demo_emulator_process(
        port=0,
        seed=seed,
        transactions=transactions,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        start_timeout_s=timeout_s,
    ) as running:
        yield running.base_url


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
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "id_user": user_id,
        },
    )
    response.raise_for_status()
    return response.json()["access_token"]
