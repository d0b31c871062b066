"""Benchmark: how fast the emulator serves pages, so benchmarks measure the pipeline, not it.

    python -m benchmarks.emulator_serving --transactions 1000000

Fetches every page of 1000 transactions over HTTP without parsing them and prints pages/s.
"""

from __future__ import annotations

import argparse
import time

import httpx

from benchmarks._emulator_process import emulator_process, renew_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    with emulator_process(args.transactions) as base_url:
        print(
            f"emulator up with {args.transactions:,} transactions in {time.perf_counter() - started:.1f}s"
        )
        token = renew_token(base_url)
        pages = size = 0
        url: str | None = f"{base_url}/users/me/transactions"
        params: dict | None = {"limit": 1000, "all": ""}
        started = time.perf_counter()
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            while url:
                response = http.get(url, params=params)
                response.raise_for_status()
                size += len(response.content)
                pages += 1
                # the next link sits at the end of the body; find it without a full JSON parse
                tail = response.content[-600:].decode()
                marker = '"next":{"href":"'
                url = tail.split(marker, 1)[1].split('"', 1)[0] if marker in tail else None
                params = None
        elapsed = time.perf_counter() - started
    print(
        f"served {pages} pages ({size / 1e6:.0f} MB) in {elapsed:.1f}s: {pages / elapsed:.0f} pages/s"
    )


if __name__ == "__main__":
    main()
