"""Benchmark: dbt build and the financial overview over a ledger of N transactions.

    python -m benchmarks.overview --transactions 1000000

Fills a fresh ledger from the emulator (not timed), then times `dbt build` and, separately, the
overview (week, month and quarter: build from the marts, render, chunk, write).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._emulator_process import emulator_process, renew_token
from pfo_pipeline import lake, settings
from pfo_pipeline.defs.analytics.project import dbt_variables
from pfo_pipeline.knowledge.insights import InsightsSettings, build_insights
from pfo_pipeline.knowledge.overview import OverviewRequest, build_overview
from pfo_pipeline.knowledge.store import write_overview
from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.operations.accounts_sync import sync_accounts
from pfo_pipeline.operations.balances_refresh import refresh_balances
from pfo_pipeline.operations.sync_context import new_context
from pfo_pipeline.operations.transactions_sync import sync_transactions
from pfo_pipeline.powens import PowensClient
from pfo_pipeline.powens.options import ClientOptions

TENANT, CONNECTION = "tenant.family-office", "conn-powens-primary"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args()
    ledger = lake.LakeLocation.in_folder(Path(tempfile.mkdtemp()) / "bench-lake")
    with emulator_process(args.transactions) as base_url:
        conn = lake.connect(ledger)
        migrate(conn)
        with PowensClient(
            base_url, user_id=1, api_key=renew_token(base_url), options=ClientOptions(timeout_s=60)
        ) as client:
            sync_accounts(conn, client, new_context(TENANT, CONNECTION, 1))
            sync_transactions(conn, client, new_context(TENANT, CONNECTION, 1))
            result = refresh_balances(conn, client, new_context(TENANT, CONNECTION, 1))
        rows = conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()[0][0]
        conn.close()
    as_of = result.as_of_date
    dbt = Path(sys.executable).parent / "dbt"
    started = time.perf_counter()
    subprocess.run(
        [str(dbt), "build", "--quiet", "--project-dir", str(settings.DBT_PROJECT_DIR),
         "--profiles-dir", str(settings.DBT_PROJECT_DIR)],
        check=True,
        env={**os.environ, **dbt_variables(ledger)},
        cwd=settings.DBT_PROJECT_DIR,
    )  # fmt: skip
    dbt_seconds = time.perf_counter() - started
    conn = lake.connect(ledger)
    started = time.perf_counter()
    insights = build_insights(conn, TENANT, as_of, InsightsSettings())  # once per day, as the asset
    insights_seconds = time.perf_counter() - started
    for period in ("week", "month", "quarter"):
        overview = build_overview(conn, OverviewRequest(TENANT, period, as_of), insights)
        write_overview(conn, overview, datetime.now(UTC))
    overview_seconds = time.perf_counter() - started
    conn.close()
    print(f"ledger rows={rows:,}")
    print(f"dbt build: {dbt_seconds:.1f}s")
    print(
        f"overview (week + month + quarter with insights, written and chunked): "
        f"{overview_seconds:.2f}s, of which insights {insights_seconds:.2f}s"
    )


if __name__ == "__main__":
    main()
