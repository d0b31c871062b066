"""Benchmark: a full sync of N transactions into a lake whose data is in S3 (SeaweedFS on loopback,
`pfo_pipeline.local_s3`) against the same sync into a lake on the local disk, from one emulator, in
one run: the object store's cost on the sync (target: within 1.5x of the local figure).

    python -m benchmarks.s3_sync --transactions 1000000
    python -m benchmarks.s3_sync --transactions 1000000 --rounds 2   # local, S3, local, S3

Both lakes have a SQLite catalog in a temporary folder; only the data path differs. The emulator
and SeaweedFS run in processes of their own (on this machine's cores: a real object store would
not take CPU from the sync). Each sync is `benchmarks.ledger_sync.timed_sync` (the same calls the
Dagster assets make), after the tenant's accounts sync.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks._emulator_process import emulator_process, renew_token
from benchmarks.ledger_sync import CONNECTION, TENANT, peak_mb, timed_sync
from pfo_pipeline import lake
from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.local_s3 import seaweedfs
from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.sync_context import new_context
from pfo_pipeline.operations.transaction_fetch import DEFAULT_FETCH_CONCURRENCY
from pfo_pipeline.operations.transactions_sync import DEFAULT_BATCH_ROWS
from pfo_pipeline.powens import PowensClient
from pfo_pipeline.powens.options import ClientOptions


def full_sync(location: lake.LakeLocation, base_url: str, token: str, what: str) -> float:
    conn = lake.connect(location, shared=False)
    try:
        migrate(conn)
        with PowensClient(
            base_url, user_id=1, api_key=token, options=ClientOptions(timeout_s=60)
        ) as client:
            sync_accounts(conn, client, new_context(TENANT, CONNECTION, 1))
            elapsed = timed_sync(conn, client, what, DEFAULT_FETCH_CONCURRENCY, DEFAULT_BATCH_ROWS)
        rows = conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()[0][0]
        files = conn.execute(
            f"SELECT count(*) FROM __ducklake_metadata_{lake.LAKE}.ducklake_data_file "
            "WHERE end_snapshot IS NULL"
        ).fetchall()[0][0]
        print(f"  {what}: {rows:,} rows in {files} live data files at {location.data_path}")
        return elapsed
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1, help="local then S3, this many times")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pfo-s3-bench-"))
    startup_s = max(300.0, args.transactions / 10_000)
    with (
        emulator_process(args.transactions, timeout_s=startup_s) as base_url,
        seaweedfs(bucket="pfo-bench", data_dir=work / "s3") as store,
    ):
        os.environ.update(store.env())
        token = renew_token(base_url)
        times: dict[str, list[float]] = {"local": [], "s3": []}
        for round_number in range(args.rounds):
            local = lake.LakeLocation.in_folder(work / f"local-{round_number}")
            times["local"].append(full_sync(local, base_url, token, "full sync, local disk"))
            remote = lake.LakeLocation(
                f"sqlite:{work / f's3-{round_number}' / 'pfo_catalog.sqlite'}",
                store.new_prefix(f"round{round_number}"),
            )
            times["s3"].append(full_sync(remote, base_url, token, "full sync, S3 (SeaweedFS)"))
    best_local, best_s3 = min(times["local"]), min(times["s3"])
    print(
        f"transactions={args.transactions:,} local={', '.join(f'{t:.1f}s' for t in times['local'])}"
        f" s3={', '.join(f'{t:.1f}s' for t in times['s3'])} ratio(best)={best_s3 / best_local:.2f}x"
        f" (target <= 1.5x) peak_rss={peak_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
