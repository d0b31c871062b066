"""One sync of a tenant's stream at a time, whoever started it.

Runs launched through Dagster's queue are held back by the instance's run queue (one run per
partition at a time, `scripts/instance_config.py`); a run that bypasses the queue
(`dagster asset materialize`, a script, a second `dagster dev`) meets this lock instead: an
exclusive `flock` per lake, tenant and stream, taken before any Powens request and held until
the load has committed. The kernel drops it when its process ends, however it ends (SIGKILL and
the OOM killer included), so a dead sync never blocks the next one. A second sync is refused at
once with who holds the lock: Powens is not read twice, and nothing is waited on silently.

The lock files live beside a SQLite catalog (every process writing that lake sees them; such a
lake lives on one machine). A PostgreSQL catalog is reached from every machine whose runs write
the lake, so there the lock is an advisory lock in the catalog's database instead
(`sync_lock_postgres`), with the same rules: never waited on, gone with its process.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pfo_pipeline.lake import LakeLocation

SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class SyncAlreadyRunning(RuntimeError):
    """Another sync of the same tenant and stream holds the lock; says who."""


def lock_folder(location: LakeLocation) -> Path:
    """The folder of a SQLite-catalogued lake's lock files."""
    catalog = Path(location.resolved().catalog.split(":", 1)[1])
    return catalog.with_name(f".{catalog.name}-sync-locks")  # hidden: not a catalog file


def lock_path(location: LakeLocation, tenant_id: str, stream: str) -> Path:
    return lock_folder(location) / f"{SAFE.sub('_', tenant_id)}.{SAFE.sub('_', stream)}.lock"


@contextmanager
def tenant_sync_lock(
    location: LakeLocation, tenant_id: str, stream: str, holder: str = ""
) -> Iterator[None]:
    """Hold the tenant's stream for the block, or raise `SyncAlreadyRunning` at once."""
    if location.kind == "postgres":
        from pfo_pipeline.operations.sync_lock_postgres import postgres_sync_lock

        with postgres_sync_lock(location.catalog.split(":", 1)[1], tenant_id, stream, holder):
            yield
        return
    path = lock_path(location, tenant_id, stream)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncAlreadyRunning(_refusal(path, tenant_id, stream)) from None
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "holder": holder,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _refusal(path: Path, tenant_id: str, stream: str) -> str:
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        owner = {}
    who = ", ".join(
        f"{key} {owner[key]}" for key in ("holder", "pid", "host", "since") if owner.get(key)
    )
    return (
        f"tenant {tenant_id}: another {stream} sync of this tenant is running"
        f"{f' ({who})' if who else ''}; this one is refused so that Powens is not read twice. "
        "Nothing was fetched or written; the next run syncs once that one has finished."
    )
