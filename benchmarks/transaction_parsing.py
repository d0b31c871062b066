"""Benchmark: what the transaction parser's fast path buys over the checked path alone.

    python -m benchmarks.transaction_parsing --transactions 1000000

The emulator (its own process) serves N transactions, as Powens would send them; each page is
decoded as the client decodes it (orjson), then parsed twice, timed apart: by `parse_transaction`
(the fast path, falling back to the checked one) and by `_parse_transaction_checked` alone. The
two results are compared, and the order alternates page by page. Prints both times, rows/s and
how many records the fast path took.
"""

from __future__ import annotations

import argparse
import time

import httpx
import orjson

from benchmarks._emulator_process import emulator_process, renew_token
from pfo_pipeline.powens import transaction_parsing
from pfo_pipeline.powens.transaction_parsing import _parse_transaction_checked, parse_transaction

PAGE_LIMIT = 1000


def pages(base_url: str, token: str):
    """The raw records of every page of user 1's transactions, following `_links.next`."""
    headers = {"Authorization": f"Bearer {token}"}
    params = {"limit": PAGE_LIMIT, "min_date": "1900-01-01", "max_date": "2100-12-31"}
    url: str | None = f"{base_url}/users/1/transactions"
    with httpx.Client(headers=headers, timeout=60) as client:
        while url:
            response = client.get(url, params=params)
            response.raise_for_status()
            body = orjson.loads(response.content)
            yield body["transactions"]
            params = None  # the next link carries them
            link = (body.get("_links") or {}).get("next") or {}
            url = link.get("href")
            if url and url.startswith("/"):
                url = base_url.split("/2.0")[0] + url


def fast_path_takes(record: dict) -> bool:
    try:
        transaction_parsing._parse_transaction_fast(record)
    except transaction_parsing._NotPlain:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args()
    seam_s = checked_s = 0.0
    rows = plain = 0
    with emulator_process(args.transactions) as base_url:
        token = renew_token(base_url)
        for number, records in enumerate(pages(base_url, token)):
            both = (parse_transaction, _parse_transaction_checked)
            results = {}
            for parse in both if number % 2 == 0 else both[::-1]:
                started = time.perf_counter()
                results[parse] = [parse(record) for record in records]
                elapsed = time.perf_counter() - started
                if parse is parse_transaction:
                    seam_s += elapsed
                else:
                    checked_s += elapsed
            if results[parse_transaction] != results[_parse_transaction_checked]:
                raise SystemExit(f"page {number}: the two paths disagree")
            rows += len(records)
            plain += sum(fast_path_takes(record) for record in records)
    print(f"rows={rows:,} fast-path records={plain:,} ({plain / rows:.1%})")
    print(
        f"parse_transaction (fast path + fallback): {seam_s:.2f}s "
        f"({rows / seam_s:,.0f} rows/s, {seam_s / rows * 1e6:.2f} us/row)"
    )
    print(
        f"checked path only: {checked_s:.2f}s "
        f"({rows / checked_s:,.0f} rows/s, {checked_s / rows * 1e6:.2f} us/row)"
    )
    print(f"the fast path saves {checked_s - seam_s:.2f}s, {checked_s / seam_s:.2f}x")


if __name__ == "__main__":
    main()
