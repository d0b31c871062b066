"""Dead runs end and free their slots by themselves (`pytest -m dead_runs`, its own CI step).

`dagster dev` on a fresh DAGSTER_HOME with the project's instance settings (the intervals made
short so the proof is quick, and one slot in the ledger pool so a slot held for good blocks
everything): syncs go through the queue and the daemon to run workers of the code server. The
run worker of a tenant's transactions sync is SIGKILLed mid-sync, as the OOM killer would. With
no manual step, that run ends failed, its `lake` pool slot is freed, and the runs behind it
finish within 3 minutes: a second sync of the same tenant, held in the queue while the first
ran (one run per partition), and another tenant's sync, held by the pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef
from dagster_graphql import DagsterGraphQLClient

from pfo_pipeline.instance_config import write_instance_config
from powens_emulator import EmulatorConfig, start_emulator
from powens_emulator.faults import FaultConfig
from tests.conftest import FAMILY, SECOND, write_tenants_file
from tests.e2e.test_ui_end_to_end import free_port

pytestmark = pytest.mark.dead_runs
JOB = "sync_openbanking_transactions"
RECOVERY_LIMIT_S = 180


def instance_home(tmp: Path) -> Path:
    home = tmp / "dagster_home"
    home.mkdir()
    config = home / "dagster.yaml"
    write_instance_config(config)
    settings = yaml.safe_load(config.read_text())
    settings["run_monitoring"].update(poll_interval_seconds=2, free_slots_after_run_end_seconds=2)
    settings["concurrency"]["pools"]["default_limit"] = 1
    config.write_text(yaml.safe_dump(settings))
    return home


def wait_until(what: str, check, timeout_s: float, dev: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert dev.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s}s"
        time.sleep(0.25)


def run_worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The run worker's process id, as its code server recorded it when starting it."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.event_specific_data if record.dagster_event else None
        pid = (getattr(data, "metadata", None) or {}).get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def step_started(instance: DagsterInstance, run_id: str) -> bool:
    return bool(instance.all_logs(run_id, of_type=DagsterEventType.STEP_START))


def status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def test_a_killed_run_worker_ends_its_run_and_frees_its_slot(tmp_path: Path, powens_env) -> None:
    home = instance_home(tmp_path)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: pfo_pipeline.definitions\n"
        "      location_name: pfo_pipeline\n"
    )
    # Slow Powens pages: the first sync is still fetching when it is killed.
    config = EmulatorConfig(seed=61, transactions=3000, faults=FaultConfig(latency_ms=2500))
    with start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "PFO_TENANTS_FILE": str(tenants),
            "PFO_LAKE_CATALOG": f"sqlite:{tmp_path / 'pfo_catalog.sqlite'}",
            "PFO_LAKE_DATA_PATH": str(tmp_path / "lake") + "/",
            "PFO_WEBHOOK_INBOX": str(tmp_path / "inbox.sqlite3"),
            "PFO_STAGE_DIR": str(tmp_path / "stage"),
        }
        port = free_port()
        log_path = tmp_path / "dagster_dev.log"
        log = log_path.open("w")
        dagster = Path(sys.executable).parent / "dagster"
        # The instance's storage is made here first: two processes creating it at once race.
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
        dev = subprocess.Popen(
            [str(dagster), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=tmp_path,  # no .env here: the environment above is what the runs see
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def up() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).is_success
                except httpx.TransportError:
                    return False

            wait_until("dagster dev up", up, 180, dev, log_path)
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            first = client.submit_job_execution(JOB, tags={"dagster/partition": FAMILY})
            wait_until(
                "the first sync's step running",
                lambda: step_started(instance, first),
                180,
                dev,
                log_path,
            )
            pid = wait_until(
                "the run worker's pid", lambda: run_worker_pid(instance, first), 30, dev, log_path
            )
            # The same tenant again: held in the queue, not started beside the first.
            again = client.submit_job_execution(JOB, tags={"dagster/partition": FAMILY})
            # Another tenant: launched, then held by the ledger pool's one slot.
            other = client.submit_job_execution(JOB, tags={"dagster/partition": SECOND})
            time.sleep(6)  # several queue and monitoring ticks
            assert status(instance, again) == DagsterRunStatus.QUEUED
            assert status(instance, first) == DagsterRunStatus.STARTED
            assert not step_started(instance, other)  # no slot for it yet

            os.kill(pid, signal.SIGKILL)  # the OOM killer's way: no clean-up of any kind
            killed_at = time.monotonic()
            wait_until(
                "the killed run marked failed",
                lambda: status(instance, first) == DagsterRunStatus.FAILURE,
                RECOVERY_LIMIT_S,
                dev,
                log_path,
            )
            for run_id in (other, again):
                wait_until(
                    f"run {run_id} finished",
                    lambda run_id=run_id: instance.get_run_by_id(run_id).is_finished,
                    RECOVERY_LIMIT_S - (time.monotonic() - killed_at),
                    dev,
                    log_path,
                )
            recovered_s = time.monotonic() - killed_at
            assert status(instance, other) == DagsterRunStatus.SUCCESS
            assert status(instance, again) == DagsterRunStatus.SUCCESS
            assert recovered_s < RECOVERY_LIMIT_S
            print(f"killed run failed, slot freed, both runs behind it done in {recovered_s:.0f}s")
            # No slot is held any more: the killed run's was freed, the others gave theirs back.
            assert instance.event_log_storage.get_concurrency_run_ids() == set()
        finally:
            instance.dispose()
            dev.send_signal(signal.SIGINT)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
                dev.wait(timeout=30)
            log.close()
