"""Benchmark: what the lake buys — tenants loading side by side, analysts never blocked.

    python -m benchmarks.concurrency --tenants 8 --transactions 20000

One emulator process serves every tenant (each tenant is the same Powens user under its own tenant
and connection ids, so each lands its own copy of the history). Prints:
- N tenants synced one after another vs all at once in N processes (wall times and ratio);
- analyst reads (a separate process querying in a loop) attempted / failed / torn during both;
- that every tenant's ledger holds exactly what Powens serves.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import yaml

from benchmarks._emulator_process import emulator_process
from pfo_pipeline import lake
from pfo_pipeline.lake.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
SYNC = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pfo_pipeline import lake
    from pfo_pipeline.operations.powens_clients import powens_client_for
    from pfo_pipeline.powens.options import ClientOptions
    from pfo_pipeline.tenancy.config import load_tenants
    from pfo_pipeline.operations.accounts_sync import sync_accounts
    from pfo_pipeline.operations.balances_refresh import refresh_balances
    from pfo_pipeline.operations.sync_context import new_context
    from pfo_pipeline.operations.transactions_sync import sync_transactions

    tenants_file, ledger_path, tenant_id = sys.argv[1:4]
    tenant = load_tenants(Path(tenants_file))[tenant_id]
    binding = tenant.primary_open_banking
    with (
        powens_client_for(tenant, ClientOptions(timeout_s=60)) as client,
        lake.open_lake(lake.LakeLocation.in_folder(ledger_path)) as conn,
    ):
        for run in (sync_accounts, sync_transactions, refresh_balances):
            run(conn, client, new_context(tenant.tenant_id, binding.connection_id, 1))
    """
)
ANALYST = textwrap.dedent(
    """
    import os, sys, time
    from pfo_pipeline import lake
    location, stop = lake.LakeLocation.in_folder(sys.argv[1]), sys.argv[2]
    attempted = failed = torn = 0
    while not os.path.exists(stop):
        attempted += 1
        try:
            conn = lake.connect(location, read_only=True)  # a cursor of one attached lake
            orphans = conn.execute(
                "SELECT count(*) FROM ledger.bank_transactions WHERE load_id NOT IN "
                "(SELECT load_id FROM ledger.loads WHERE status = 'succeeded')"
            ).fetchall()[0][0]
            conn.close()
            torn += bool(orphans)
        except Exception as exc:
            failed += 1
            print("read failed:", str(exc).splitlines()[0][:200], file=sys.stderr, flush=True)
        time.sleep(0.05)
    print(attempted, failed, torn)
    """
)


def tenants_file(path: Path, base_url: str, count: int) -> list[str]:
    ids = [f"tenant.bench-{i:02d}" for i in range(count)]
    body = {
        "tenants": [
            {
                "tenant_id": tenant_id,
                "app_id": "pocket-family-office",
                "blueprint": "pocket-family-office.app@1.0.0",
                "config_version": 1,
                "bindings": {
                    "primaryOpenBanking": {
                        "connection_id": f"conn-{tenant_id}",
                        "integration_key": "openbanking.powens",
                        "ownership_mode": "byok",
                        "powens_user_id": 1,
                        "config": {"environment": "sandbox", "base_url": base_url},
                        "secrets": {
                            "client_id": "PFO_POWENS_CLIENT_ID",
                            "client_secret": "PFO_POWENS_CLIENT_SECRET",
                        },
                    }
                },
            }
            for tenant_id in ids
        ]
    }
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return ids


def run_syncs(script: Path, tenants: Path, ledger: Path, ids: list[str], parallel: bool) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PFO_POWENS_CLIENT_ID": "pfo-demo-client",
        "PFO_POWENS_CLIENT_SECRET": "pfo-demo-secret",
    }
    started = time.perf_counter()
    procs: list[subprocess.Popen] = []
    for tenant_id in ids:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tenants), str(ledger), tenant_id], env=env
        )
        if parallel:
            procs.append(proc)
        elif proc.wait() != 0:
            raise SystemExit(f"sync of {tenant_id} failed")
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a parallel sync failed")
    return time.perf_counter() - started


def served_count(base_url: str) -> int:
    token = httpx.post(
        f"{base_url}/auth/renew",
        json={"client_id": "pfo-demo-client", "client_secret": "pfo-demo-secret", "id_user": 1},
    ).json()["access_token"]
    body = httpx.get(
        f"{base_url}/users/me/transactions",
        params={"limit": 1, "all": ""},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    return int(body["total"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--transactions", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pfo-concurrency-"))
    (work / "sync.py").write_text(SYNC)
    (work / "analyst.py").write_text(ANALYST)
    with emulator_process(args.transactions) as base_url:
        ids = tenants_file(work / "tenants.yaml", base_url, args.tenants)
        expected = served_count(base_url)
        walls = {}
        for mode, parallel in (("one after another", False), ("all at once", True)):
            ledger, stop = work / f"lake-{int(parallel)}", work / f"stop-{int(parallel)}"
            with lake.open_lake(lake.LakeLocation.in_folder(ledger)) as conn:
                migrate(conn)  # the tables exist before the analyst starts reading
            analyst = subprocess.Popen(
                [sys.executable, str(work / "analyst.py"), str(ledger), str(stop)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            walls[mode] = run_syncs(work / "sync.py", work / "tenants.yaml", ledger, ids, parallel)
            stop.write_text("")
            attempted, failed, torn = analyst.communicate(timeout=60)[0].split()
            with lake.open_lake(lake.LakeLocation.in_folder(ledger), read_only=True) as conn:
                counts = dict(
                    conn.execute(
                        "SELECT tenant_id, count(*) FROM ledger.bank_transactions GROUP BY 1"
                    ).fetchall()
                )
            exact = all(counts.get(t) == expected for t in ids)
            print(
                f"{args.tenants} tenants x {expected:,} transactions, {mode}: "
                f"{walls[mode]:.1f}s; every ledger exact: {exact}; analyst reads attempted "
                f"{attempted}, failed {failed}, saw half a load {torn}"
            )
    ratio = walls["one after another"] / walls["all at once"]
    print(f"wall ratio (one after another / all at once): {ratio:.2f}x")


if __name__ == "__main__":
    main()
