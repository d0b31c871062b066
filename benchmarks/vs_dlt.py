"""Benchmark: the pfo full sync against dlt's `rest_api` source on the same emulator, same run
(docs/spec.md §11; the bar is 3x faster).

    pip install -e ".[bench]"        # dlt, only for this benchmark
    python -m benchmarks.vs_dlt --transactions 1000000

One emulator process serves both tools. Each tool runs in its own subprocess, so the peak memory
printed is that tool's alone:
- dlt: `rest_api` source with bearer auth, the `json_link` paginator on `_links.next.href`, merge
  write disposition on `id`, the parquet loader file format, into a DuckDB file;
- pfo: the accounts sync then the transactions full sync (client -> mapping -> Pandera ->
  DuckLake, one atomic commit), into a fresh lake.
Prints both times, rows, peak RSS and the ratio, plus each process's CPU time (imports included),
a steadier figure when the machine is busy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from benchmarks._emulator_process import emulator_process, renew_token

ROOT = Path(__file__).resolve().parents[1]

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

PFO_RUN = textwrap.dedent(
    """
    import json, resource, sys, time
    from pfo_pipeline.ledger import lake
    from pfo_pipeline.ledger.schema import migrate
    from pfo_pipeline.operations import sync
    from pfo_pipeline.powens import PowensClient

    base_url, token, workdir = sys.argv[1:4]
    tenant, connection = "tenant.family-office", "conn-powens-primary"
    started = time.perf_counter()
    conn = lake.connect(lake.LakeLocation.in_folder(workdir + "/lake"))
    migrate(conn)
    with PowensClient(base_url, user_id=1, api_key=token, timeout_s=60) as client:
        sync.sync_accounts(conn, client, sync.new_context(tenant, connection, 1))
        sync.sync_transactions(conn, client, sync.new_context(tenant, connection, 1))
    elapsed = time.perf_counter() - started
    rows = conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()[0][0]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": elapsed, "rows": rows, "peak_rss_mb": usage.ru_maxrss / 1024,
                      "cpu_s": usage.ru_utime + usage.ru_stime}))
    """
)


def run_tool(name: str, script: str, base_url: str, token: str) -> dict[str, float]:
    """Run one tool in its own interpreter; its last stdout line is its JSON result."""
    with tempfile.TemporaryDirectory(prefix=f"vs-dlt-{name}-") as workdir:
        done = subprocess.run(
            [sys.executable, "-c", script, base_url, token, workdir],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"{name}: {result['seconds']:.1f}s (process cpu {result['cpu_s']:.1f}s) "
        f"rows={result['rows']:,} "
        f"peak_rss={result['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--skip-dlt", action="store_true", help="time the pfo sync only")
    args = parser.parse_args()
    with emulator_process(args.transactions) as base_url:
        token = renew_token(base_url)
        pfo = run_tool("pfo", PFO_RUN, base_url, token)
        if args.skip_dlt:
            return
        dlt = run_tool("dlt", DLT_RUN, base_url, token)
    print(
        f"pfo is {dlt['seconds'] / pfo['seconds']:.1f}x faster than dlt "
        f"({pfo['seconds']:.1f}s vs {dlt['seconds']:.1f}s); peak RSS {pfo['peak_rss_mb']:.0f} MB "
        f"vs {dlt['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
