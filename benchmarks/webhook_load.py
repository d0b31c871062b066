"""Load test: the webhook receiver on loopback under concurrent signed (and forged) deliveries.

    python -m benchmarks.webhook_load --requests 5000 --concurrency 16

Starts `pfo webhooks serve` in its own process, sends unique signed CONNECTION_SYNCED events plus
10% with a bad signature, then checks every accepted event is in the inbox and every forgery got 401.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
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
PATH = "/webhooks/powens/conn-load/CONNECTION_SYNCED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
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
        [
            sys.executable,
            "-m",
            "pfo_pipeline.cli",
            "webhooks",
            "serve",
            "--port",
            str(port),
            "--inbox",
            str(inbox),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=receiver_log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/health", server, timeout_s=60)
        client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=args.concurrency))

        def deliver(i: int) -> tuple[bool, int]:
            forged = i % 10 == 0
            body = orjson.dumps(
                {"user": {"id": 1}, "connection": {"id": 11, "accounts": [{"id": i}]}}
            )
            date = signature_date()
            signature = sign("forged" if forged else SECRET, "POST", PATH, date, body)
            response = client.post(
                base + PATH,
                content=body,
                headers={"BI-Signature": signature, "BI-Signature-Date": date},
            )
            return forged, response.status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(deliver, range(args.requests)))
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
        receiver_log.close()
    good = [status for forged, status in results if not forged]
    bad = [status for forged, status in results if forged]
    stored = sqlite3.connect(inbox).execute("SELECT count(*) FROM webhook_events").fetchone()[0]
    print(f"{args.requests} requests in {elapsed:.1f}s: {args.requests / elapsed:.0f} req/s")
    print(
        f"accepted 200: {good.count(200)}/{len(good)}, stored in inbox: {stored}, lost: {len(good) - stored}"
    )
    print(f"forged rejected 401: {bad.count(401)}/{len(bad)}")
    refusals = (work / "receiver.log").read_text().count("webhook refused")
    print(f"refusals logged by the receiver: {refusals} ({work / 'receiver.log'})")


if __name__ == "__main__":
    main()
