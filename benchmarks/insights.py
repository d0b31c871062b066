"""Benchmark: accuracy of the overview's insights on labelled families.

    python -m benchmarks.insights [--families 6] [--transactions 12000]

For each family (a seed and a clock at a different day, so month ends and weekends fall
differently) the labelled emulator serves a planted history; the pipeline syncs it into a fresh
lake, dbt builds the marts, and the quarter overview is built as of the clock. Recurring series
and anomalies are scored against the truth: the bars are precision and recall >= 0.95 for
recurring series, anomaly recall >= 0.9 with at most 5 % of flagged items false.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from benchmarks.insights_scoring import Score, score
from pfo_pipeline import lake, settings
from pfo_pipeline.defs.analytics.project import dbt_variables
from pfo_pipeline.knowledge.overview import OverviewRequest, build_overview
from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.balances_refresh import refresh_balances
from pfo_pipeline.operations.sync_context import new_context
from pfo_pipeline.operations.transactions_sync import sync_transactions
from pfo_pipeline.powens import PowensClient
from pfo_pipeline.powens.options import ClientOptions
from powens_emulator import EmulatorConfig, start_emulator

TENANT, CONNECTION = "tenant.family-office", "conn-powens-primary"
CLOCKS = ["2026-04-30", "2026-05-31", "2026-08-14", "2026-10-01", "2027-01-31", "2027-02-28",
          "2026-12-24", "2027-06-07"]  # fmt: skip


def run_family(seed: int, clock: str, transactions: int, history_days: int) -> Score:
    now = datetime.fromisoformat(clock).replace(hour=8)
    config = EmulatorConfig(seed=seed, transactions=transactions, history_days=history_days,
                            now=now, family="labelled")  # fmt: skip
    location = lake.LakeLocation.in_folder(Path(tempfile.mkdtemp()) / "insights-lake")
    with start_emulator(config) as emulator:
        token = httpx.post(f"{emulator.base_url}/auth/renew", json={
            "client_id": config.client_id, "client_secret": config.client_secret, "id_user": 1,
        }).json()["access_token"]  # fmt: skip
        conn = lake.connect(location)
        migrate(conn)
        with PowensClient(
            emulator.base_url, user_id=1, api_key=token, options=ClientOptions(timeout_s=60)
        ) as client:
            for step in (sync_accounts, sync_transactions, refresh_balances):
                step(conn, client, new_context(TENANT, CONNECTION, 1))
        conn.close()
        labels = emulator.state.labels()
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [str(dbt), "build", "--quiet", "--project-dir", str(settings.DBT_PROJECT_DIR),
         "--profiles-dir", str(settings.DBT_PROJECT_DIR)],
        check=True, env={**os.environ, **dbt_variables(location)}, cwd=settings.DBT_PROJECT_DIR,
    )  # fmt: skip
    conn = lake.connect(location, read_only=True)
    try:
        overview = build_overview(conn, OverviewRequest(TENANT, "quarter", now.date()))
        ids = dict(
            (int(external), canonical)
            for external, canonical in conn.execute(
                "SELECT external_id, id FROM ledger.bank_transactions"
            ).fetchall()
        )
    finally:
        conn.close()
    return score(labels, overview.summary, ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", type=int, default=6)
    parser.add_argument("--transactions", type=int, default=12000)
    parser.add_argument("--history-days", type=int, default=3 * 365)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    total = Score()
    started = time.perf_counter()
    for index in range(args.families):
        clock = CLOCKS[index % len(CLOCKS)]
        family = run_family(100 + index, clock, args.transactions, args.history_days)
        print(f"family {index} (seed {100 + index}, clock {clock}): "
              + "; ".join(family.lines()[:1] + family.lines()[2:3]))  # fmt: skip
        if args.verbose:
            print("\n".join(f"    {m}" for m in family.misses))
        total.add(family)
    print(f"\n{args.families} labelled families, {args.transactions:,} transactions each, "
          f"{time.perf_counter() - started:.0f}s")  # fmt: skip
    print("\n".join(total.lines()))
    bars = (
        total.series_precision >= 0.95
        and total.series_recall >= 0.95
        and total.anomaly_recall >= 0.9
        and total.anomaly_false_share <= 0.05
    )
    print("bars met" if bars else "BARS NOT MET")
    sys.exit(0 if bars else 1)


if __name__ == "__main__":
    main()
