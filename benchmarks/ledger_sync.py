"""Benchmark: full sync of N transactions from the emulator into a fresh DuckLake ledger, then an
incremental sync after about 1% of the rows changed upstream (docs/spec.md §11).

    python -m benchmarks.ledger_sync --transactions 1000000
    python -m benchmarks.ledger_sync --transactions 1000000 --latency-ms 250 --concurrency 8
    python -m benchmarks.ledger_sync --transactions 5000000 --full-only   # memory flat in history

`--latency-ms` makes the emulator answer every request that late (Powens answers a page in
hundreds of ms); `--concurrency` is the transactions sync's `fetch_concurrency` (page chains over
date windows read side by side; 1 = one chain).

Runs the same operations the Dagster assets call (client -> mapping -> Pandera -> ledger) in this
process, with the emulator in its own process; prints times, rows and this process's peak RSS
after each sync (the peak must follow `--batch-rows`, not the size of the history).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

from benchmarks._emulator_process import emulator_process, renew_token, set_latency
from pfo_pipeline import lake
from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.sync_context import new_context
from pfo_pipeline.operations.transaction_fetch import DEFAULT_FETCH_CONCURRENCY
from pfo_pipeline.operations.transactions_sync import (
    DEFAULT_BATCH_ROWS,
    TransactionsSyncOptions,
    sync_transactions,
)
from pfo_pipeline.powens import PowensClient
from pfo_pipeline.powens.options import ClientOptions

TENANT, CONNECTION = "tenant.family-office", "conn-powens-primary"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """This process's CPU time (all its threads): less at the mercy of a busy machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_sync(
    conn: duckdb.DuckDBPyConnection,
    client: PowensClient,
    what: str,
    concurrency: int,
    batch_rows: int,
) -> float:
    ctx = new_context(TENANT, CONNECTION, 1)
    started, cpu_started = time.perf_counter(), cpu_s()
    result = sync_transactions(
        conn, client, ctx, TransactionsSyncOptions(concurrency=concurrency, batch_rows=batch_rows)
    )
    elapsed, cpu = time.perf_counter() - started, cpu_s() - cpu_started
    stats = result.stats
    print(
        f"{what}: {elapsed:.1f}s (cpu {cpu:.1f}s) mode={result.mode} rows_in={stats.rows_in:,} "
        f"upserted={stats.upserted:,} quarantined={stats.quarantined:,} "
        f"tombstoned={stats.tombstoned:,} retries={client.retries} "
        f"backoff_pauses={client.backoff_pauses} peak_rss={peak_mb():.0f} MB"
    )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--ledger", type=Path, default=None)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulator delay per request")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_FETCH_CONCURRENCY)
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS)
    parser.add_argument("--full-only", action="store_true", help="skip the incremental sync")
    args = parser.parse_args()
    ledger = args.ledger or Path(tempfile.mkdtemp()) / "bench-lake"
    # The emulator builds its history before it answers: about a minute per 5M rows.
    startup_s = max(300.0, args.transactions / 10_000)
    with emulator_process(args.transactions, timeout_s=startup_s) as base_url:
        token = renew_token(base_url)
        if args.latency_ms:
            set_latency(base_url, args.latency_ms)
        print(f"latency={args.latency_ms:g} ms per request, fetch concurrency={args.concurrency}")
        conn = lake.connect(lake.LakeLocation.in_folder(ledger))
        migrate(conn)
        with PowensClient(
            base_url, user_id=1, api_key=token, options=ClientOptions(timeout_s=60)
        ) as client:
            ctx = new_context(TENANT, CONNECTION, 1)
            sync_accounts(conn, client, ctx)
            timed_sync(conn, client, "full sync", args.concurrency, args.batch_rows)
            total = conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()[0][0]
            if args.full_only:
                print(f"ledger={ledger} rows={total:,} peak_rss={peak_mb():.0f} MB")
                return
            changed, days = 0, 0
            while changed < total // 100:
                summary = httpx.post(f"{base_url}/__emulator/advance", json={"days": 1}).json()
                changed += sum(v for k, v in summary.items() if isinstance(v, int))
                days += 1
            print(f"advanced {days} day(s): {changed:,} upstream changes ({changed / total:.1%})")
            # the accounts job runs before the transactions job, as in production
            sync_accounts(conn, client, new_context(TENANT, CONNECTION, 1))
            timed_sync(conn, client, "incremental sync", args.concurrency, args.batch_rows)
        size_mb = sum(p.stat().st_size for p in ledger.rglob("*") if p.is_file()) / 1e6
        print(f"ledger={ledger} size={size_mb:.0f} MB rows={total:,}")


if __name__ == "__main__":
    main()
