"""Benchmark: fetch and parse N transactions from the emulator.

    python -m benchmarks.client_fetch --transactions 1000000

Prints rows/s and the peak memory of this (client) process; the emulator runs in its own process.
"""

from __future__ import annotations

import argparse
import resource
import time

from benchmarks._emulator_process import emulator_process, renew_token
from pfo_pipeline.powens import PowensClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args()
    with emulator_process(args.transactions) as base_url:
        token = renew_token(base_url)
        rows = rejects = pages = 0
        started = time.perf_counter()
        with PowensClient(base_url, user_id=1, api_key=token) as client:
            for page in client.iter_transaction_pages(include_deleted=True):
                rows += len(page.records)
                rejects += len(page.rejects)
                pages += 1
        elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pages={pages} rows={rows} rejects={rejects}")
    print(f"elapsed={elapsed:.1f}s rate={rows / elapsed:,.0f} rows/s peak_rss={peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
