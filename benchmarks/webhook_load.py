"""Load test: the webhook receiver on loopback under signed, forged and oversized deliveries.

    python -m benchmarks.webhook_load --requests 3000 --concurrency 16

Starts `pfo webhooks serve` in its own process on 127.0.0.1, then:
1. load: unique signed CONNECTION_SYNCED events plus 10% forgeries (half a wrong secret, half an
   unknown connection id); every accepted event must be in the inbox, every forgery a 401;
2. flood: concurrent oversized unsigned POSTs (half declaring their length, half chunked), with the
   receiver's RSS read from /proc before, during (peak) and after; each must be refused (413, or the
   connection closed by the receiver) and the inbox must not grow.
Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from benchmarks._emulator_process import free_port, wait_until_up
from pfo_pipeline.webhooks.signature import sign, signature_date

SECRET = "whsec-load-test-secret"
TENANTS = """
tenants:
  - tenant_id: tenant.load
    app_id: pocket-family-office
    blueprint: pocket-family-office.app@1.0.0
    config_version: 1
    bindings:
      primaryOpenBanking:
        connection_id: conn-load
        powens_user_id: 1
        config: {environment: sandbox, domain: pfo-sandbox}
        secrets: {client_id: PFO_LOAD_ID, client_secret: PFO_LOAD_SECRET, webhook_secret: PFO_LOAD_WEBHOOK_SECRET}
"""
HOST = "127.0.0.1"  # the benchmark never targets anything but loopback
PATH = "/webhooks/powens/conn-load/CONNECTION_SYNCED"
PROBE_PATH = "/webhooks/powens/conn-guessed/CONNECTION_SYNCED"
MIB = 1024 * 1024


def rss_mib(pid: int) -> float | None:
    """Resident memory of `pid` from /proc (None where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def load_phase(base: str, requests: int, concurrency: int) -> tuple[float, list[tuple[bool, int]]]:
    """Signed events and forgeries; returns (seconds, [(forged, status)])."""
    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=concurrency))

    def deliver(i: int) -> tuple[bool, int]:
        forged = i % 10 == 0
        path = PROBE_PATH if i % 20 == 10 else PATH
        body = orjson.dumps({"user": {"id": 1}, "connection": {"id": 11, "accounts": [{"id": i}]}})
        date = signature_date()
        signature = sign("forged" if i % 20 == 0 else SECRET, "POST", path, date, body)
        headers = {
            "BI-Signature": signature,
            "BI-Signature-Date": date,
            "Content-Type": "application/json",
        }
        return forged, client.post(base + path, content=body, headers=headers).status_code

    started = time.perf_counter()
    with client, ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(deliver, range(requests)))
    return time.perf_counter() - started, results


def flood_phase(base: str, pid: int, count: int, size_mib: int, timeout_s: float) -> dict:
    """`count` concurrent unsigned POSTs of `size_mib` MiB each; RSS before, peak and after."""
    chunk = b"x" * MIB  # one shared chunk: the client's memory does not grow with the flood

    def body() -> Iterator[bytes]:
        for _ in range(size_mib):
            yield chunk

    def send(i: int) -> str:
        headers = {"Content-Type": "application/json", "BI-Signature": "nope"}
        if i % 2 == 0:
            headers["Content-Length"] = str(size_mib * MIB)  # else chunked: counted as it streams
        try:
            response = httpx.post(base + PATH, content=body(), headers=headers, timeout=timeout_s)
        except (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError):
            return "closed"  # the receiver answered 413 and hung up while we were still sending
        return str(response.status_code)

    peak = before = rss_mib(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            now = rss_mib(pid)
            if now is not None and (peak is None or now > peak):
                peak = now

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        outcomes = list(pool.map(send, range(count)))
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join(timeout=1)
    time.sleep(0.5)  # let the receiver settle before the last reading
    return {
        "outcomes": outcomes,
        "seconds": elapsed,
        "before": before,
        "peak": peak,
        "after": rss_mib(pid),
    }


def inbox_count(inbox: Path) -> int:
    conn = sqlite3.connect(inbox)
    try:
        return conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0]
    finally:
        conn.close()


def fmt_mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--flood-requests", type=int, default=20)
    parser.add_argument("--flood-mib", type=int, default=50, help="Size of each flood POST.")
    parser.add_argument("--flood-timeout", type=float, default=60.0, help="Seconds per POST.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    (work / "tenants.yaml").write_text(TENANTS)
    inbox = work / "inbox.sqlite3"
    port = free_port()
    env = {
        **os.environ,
        "PFO_TENANTS_FILE": str(work / "tenants.yaml"),
        "PFO_LOAD_WEBHOOK_SECRET": SECRET,
    }
    receiver_log = (work / "receiver.log").open("wb")  # one warning per forgery: kept, not printed
    server = subprocess.Popen(
        [sys.executable, "-m", "pfo_pipeline.cli", "webhooks", "serve",
         "--host", HOST, "--port", str(port), "--inbox", str(inbox)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=receiver_log,
    )  # fmt: skip
    base = f"http://{HOST}:{port}"
    try:
        wait_until_up(base + "/health", server, timeout_s=60)
        elapsed, results = load_phase(base, args.requests, args.concurrency)
        stored = inbox_count(inbox)
        flood = flood_phase(
            base, server.pid, args.flood_requests, args.flood_mib, args.flood_timeout
        )
        alive = httpx.get(base + "/health", timeout=5).status_code == 200
        stored_after_flood = inbox_count(inbox)
    finally:
        server.terminate()
        server.wait(timeout=10)
        receiver_log.close()
    good = [status for forged, status in results if not forged]
    bad = [status for forged, status in results if forged]
    print(f"{args.requests} requests in {elapsed:.1f}s: {args.requests / elapsed:.0f} req/s")
    print(
        f"accepted 200: {good.count(200)}/{len(good)}, stored in inbox: {stored}, "
        f"lost: {good.count(200) - stored}"
    )
    print(
        f"forgeries refused 401 (wrong secret or unknown connection): {bad.count(401)}/{len(bad)}"
    )
    refusals = (work / "receiver.log").read_text().count("webhook refused")
    print(f"refusals logged by the receiver: {refusals} ({work / 'receiver.log'})")
    outcomes = flood["outcomes"]
    refused = outcomes.count("413") + outcomes.count("closed")
    print(
        f"flood: {len(outcomes)} x {args.flood_mib} MiB unsigned in {flood['seconds']:.1f}s: "
        f"refused {refused}/{len(outcomes)} (413: {outcomes.count('413')}, "
        f"closed: {outcomes.count('closed')}), other: {sorted(set(outcomes) - {'413', 'closed'})}"
    )
    print(
        f"receiver RSS before {fmt_mib(flood['before'])}, peak {fmt_mib(flood['peak'])}, "
        f"after {fmt_mib(flood['after'])}; inbox grew by {stored_after_flood - stored}; "
        f"healthy after: {alive}"
    )


if __name__ == "__main__":
    main()
