"""Benchmark: pfo's full sync as users run it, through Dagster, against dlt's `rest_api` source
on the same emulator in the same run (docs/spec.md §11: >= 3x dlt, <= 35 s and <= 600 MB in every
process for 1M transactions).

    pip install -e ".[bench]"        # dlt, only for this benchmark
    python -m benchmarks.vs_dlt --transactions 1000000

One emulator process serves both tools.
- pfo: `dagster asset materialize` of one tenant partition's ledger assets (connection health,
  accounts, transactions, balances) with their checks, in a fresh `DAGSTER_HOME` holding the
  project's instance configuration (written by `scripts/_setup.sh`, as for users), a fresh lake and
  a tenants file naming the emulator. Wall time runs from the command's start to its exit (CLI,
  code location, run, checks); memory is the peak of every process the command starts.
- dlt: `rest_api` source with bearer auth, the `json_link` paginator on `_links.next.href`, merge
  write disposition on `id`, the parquet loader file format, into a DuckDB file, in its own
  interpreter, measured the same way (process start to exit, peak of every process).
Prints both times, rows, peak RSS and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb

from benchmarks._dagster_setup import run_environment
from benchmarks._emulator_process import emulator_process, renew_token
from benchmarks._process_tree import CommandRun, run_measured

TENANT = "tenant.family-office"
# The tenant's ledger group: connection health, accounts, transactions, balances (and their checks).
LEDGER_SELECTION = "group:openbanking"

DLT_RUN = textwrap.dedent(
    """
    import json, resource, sys, time
    import dlt
    from dlt.sources.rest_api import rest_api_source

    base_url, token, workdir = sys.argv[1:4]
    started = time.perf_counter()
    source = rest_api_source({
        "client": {
            "base_url": base_url + "/",
            "auth": {"type": "bearer", "token": token},
            "paginator": {"type": "json_link", "next_url_path": "_links.next.href"},
        },
        "resources": [{
            "name": "transactions",
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {
                "path": "users/1/transactions",
                "params": {"limit": 1000, "all": ""},
                "data_selector": "transactions",
            },
        }],
    })
    pipeline = dlt.pipeline(
        pipeline_name="powens_dlt",
        pipelines_dir=workdir + "/pipelines",
        destination=dlt.destinations.duckdb(workdir + "/dlt.duckdb"),
        dataset_name="powens",
    )
    pipeline.run(source, loader_file_format="parquet")
    elapsed = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM transactions")[0][0]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": elapsed, "rows": rows, "peak_rss_mb": usage.ru_maxrss / 1024,
                      "cpu_s": usage.ru_utime + usage.ru_stime}))
    """
)


def run_dlt(base_url: str, token: str) -> dict[str, float]:
    """dlt's pipeline in its own interpreter, measured from outside like pfo's command."""
    with tempfile.TemporaryDirectory(prefix="vs-dlt-dlt-") as folder:
        workdir = Path(folder)
        command = [sys.executable, "-c", DLT_RUN, base_url, token, str(workdir)]
        run = run_measured(command, cwd=workdir, env=dict(os.environ))
    if run.returncode != 0:
        raise SystemExit(f"dlt failed:\n{run.stderr[-4000:]}")
    inner = json.loads(run.stdout.strip().splitlines()[-1])
    print(
        f"dlt (rest_api, parquet, merge): {run.wall_s:.1f}s wall "
        f"({inner['seconds']:.1f}s in its pipeline) rows={inner['rows']:,} "
        f"peak_rss={run.peak_mb:.0f} MB",
        flush=True,
    )
    return {"seconds": run.wall_s, "rows": inner["rows"], "peak_rss_mb": run.peak_mb}


def run_pfo_through_dagster(base_url: str) -> dict[str, float]:
    """`dagster asset materialize` of the tenant's ledger assets, measured from outside."""
    with tempfile.TemporaryDirectory(prefix="vs-dlt-pfo-") as folder:
        workdir = Path(folder)
        env = run_environment(workdir, base_url, TENANT)
        dagster = Path(sys.executable).with_name("dagster")
        command = [
            str(dagster), "asset", "materialize", "-m", "pfo_pipeline.definitions",
            "--select", LEDGER_SELECTION, "--partition", TENANT,
        ]  # fmt: skip
        # Its own working directory: no `.env` of the checkout is read (Dagster's CLI would).
        run = run_measured(command, cwd=workdir, env=env)
        if run.returncode != 0:
            raise SystemExit(f"pfo (dagster asset materialize) failed:\n{run.stderr[-6000:]}")
        rows = _ledger_rows(workdir)
    _print_pfo(run, rows)
    return {"seconds": run.wall_s, "rows": rows, "peak_rss_mb": run.peak_mb}


def _ledger_rows(workdir: Path) -> int:
    from pfo_pipeline import lake

    location = lake.LakeLocation(f"sqlite:{workdir / 'catalog.sqlite'}", f"{workdir / 'lake'}/")
    conn = lake.connect(location, read_only=True, shared=False)
    try:
        return conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()[0][0]
    except duckdb.Error as exc:
        raise SystemExit(f"cannot read the benchmark's ledger: {exc}") from None
    finally:
        conn.close()


def _print_pfo(run: CommandRun, rows: int) -> None:
    print(
        f"pfo (dagster asset materialize, checks included): {run.wall_s:.1f}s wall "
        f"rows={rows:,} peak_rss={run.peak_mb:.0f} MB (largest process) "
        f"[{run.describe_peaks()}]",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--skip-dlt", action="store_true", help="time the pfo sync only")
    args = parser.parse_args()
    startup_s = max(300.0, args.transactions / 10_000)  # the emulator builds its history first
    with emulator_process(args.transactions, timeout_s=startup_s) as base_url:
        token = renew_token(base_url)
        pfo = run_pfo_through_dagster(base_url)
        if args.skip_dlt:
            return
        dlt = run_dlt(base_url, token)
    print(
        f"pfo is {dlt['seconds'] / pfo['seconds']:.1f}x faster than dlt "
        f"({pfo['seconds']:.1f}s vs {dlt['seconds']:.1f}s); peak RSS {pfo['peak_rss_mb']:.0f} MB "
        f"vs {dlt['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
