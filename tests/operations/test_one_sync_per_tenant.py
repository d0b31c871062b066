"""One sync of a tenant's stream at a time, also for runs that bypass Dagster's queue (two
`dagster asset materialize`, a script): the second is refused before any Powens request, saying
who holds the stream; another tenant or another stream is not held back; a killed holder's lock
is gone with its process. (Runs through the queue: tests/e2e/test_dead_runs.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from pfo_pipeline import lake
from pfo_pipeline.operations.sync_lock import SyncAlreadyRunning, tenant_sync_lock
from powens_emulator import EmulatorConfig, start_emulator
from powens_emulator.faults import FaultConfig
from tests.conftest import FAMILY, SECOND, materialize_ledger, write_tenants_file

ROOT = Path(__file__).resolve().parents[2]
SYNC = ("bank_transactions",)


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        event.step_failure_data.user_failure_data.description
        for event in result.get_step_failure_events()
        if event.step_failure_data.user_failure_data
    )


def test_a_second_sync_of_the_same_stream_is_refused_without_powens_traffic(
    tmp_path: Path, powens_env
) -> None:
    config = EmulatorConfig(seed=41, transactions=1500)
    with start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        # What one sync alone asks Powens, on a ledger of its own.
        assert materialize_ledger(tenants, tmp_path / "alone", FAMILY, assets=SYNC).success
        alone = emulator.traffic.requests

        emulator.traffic.reset()
        emulator.set_faults(FaultConfig(latency_ms=150))  # the first sync takes a while
        ledger = tmp_path / "ledger"
        results: dict[str, dg.ExecuteInProcessResult] = {}

        def sync(name: str) -> None:
            results[name] = materialize_ledger(
                tenants, ledger, FAMILY, assets=SYNC, raise_on_error=False
            )

        first = threading.Thread(target=sync, args=("first",))
        first.start()
        deadline = time.monotonic() + 60
        while emulator.traffic.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emulator.traffic.requests > 0  # the first one is reading Powens
        sync("second")
        first.join(timeout=300)
    assert results["first"].success
    assert not results["second"].success
    message = failure_text(results["second"])
    assert f"tenant {FAMILY}: another bank_transactions sync of this tenant is running" in message
    assert "refused so that Powens is not read twice" in message
    assert f"run {results['first'].run_id}" in message  # who holds it
    retried = [e for e in results["second"].all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == []
    assert emulator.traffic.requests == alone  # the refused run asked Powens nothing


def test_other_tenants_and_streams_are_not_held_back(tmp_path: Path) -> None:
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    with tenant_sync_lock(location, FAMILY, "bank_transactions"):
        with tenant_sync_lock(location, SECOND, "bank_transactions"):
            pass
        with tenant_sync_lock(location, FAMILY, "account_balances"):
            pass
        with pytest.raises(SyncAlreadyRunning, match="another bank_transactions sync"):
            with tenant_sync_lock(location, FAMILY, "bank_transactions"):
                pass
    with tenant_sync_lock(location, FAMILY, "bank_transactions"):  # released: free again
        pass


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pfo_pipeline import lake
    from pfo_pipeline.operations.sync_lock import tenant_sync_lock

    with tenant_sync_lock(lake.LakeLocation.in_folder(sys.argv[1]), sys.argv[2], "bank_transactions"):
        print("holding", flush=True)
        time.sleep(600)
    """
)


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "ledger"), FAMILY],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ},
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(SyncAlreadyRunning, match=f"pid {holder.pid}"):
            with tenant_sync_lock(location, FAMILY, "bank_transactions"):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with tenant_sync_lock(location, FAMILY, "bank_transactions"):
            pass  # the kernel released it with the process
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
