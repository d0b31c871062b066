"""One sync of a tenant's stream at a time across machines: a PostgreSQL advisory lock in the
lake's catalog database.

A file lock holds on one machine only; with the catalog on PostgreSQL the lake's writers may run
anywhere (the data on S3), and they all reach that database. So the sync takes a session-level
advisory lock there (`pg_try_advisory_lock`, keyed by tenant and stream) on a connection of its
own, held until the load has committed. Like the file lock, it is never waited on (a second sync
is refused at once, saying who holds it: the holder's session is named after its run, process and
host) and it cannot outlive its holder: PostgreSQL releases it when the session ends, whether the
process closed it or died (TCP keepalives notice a machine that vanished within about a minute).

Correctness never depends on it: two commits of the same tenant would still be serialised by the
catalog's transactions (a conflict is retried from a fresh snapshot). The lock keeps a second run
from reading Powens again for nothing.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from pfo_pipeline.lake import LakeError
from pfo_pipeline.operations.sync_lock import SyncAlreadyRunning

# PostgreSQL's limit on application_name (longer names are cut).
NAME_LENGTH = 63
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}  # fmt: skip


def lock_key(tenant_id: str, stream: str) -> int:
    """The advisory lock's 64-bit key (signed, as PostgreSQL's bigint)."""
    digest = hashlib.sha256(f"pfo-sync\0{tenant_id}\0{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def session_name(holder: str) -> str:
    """Who holds the lock, as the session's application_name: what a refusal quotes."""
    return f"pfo {holder or 'sync'} pid {os.getpid()} {socket.gethostname()}"[:NAME_LENGTH]


@contextmanager
def postgres_sync_lock(dsn: str, tenant_id: str, stream: str, holder: str = "") -> Iterator[None]:
    """Hold the tenant's stream in the catalog's database for the block, or raise
    `SyncAlreadyRunning` at once. `dsn` is the DuckLake catalog's libpq connection string (the
    same PG* variables apply)."""
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - the `scale` extra installs it
        raise LakeError(
            "a PostgreSQL catalog needs psycopg2 for the sync lock: pip install 'pfo-pipeline[scale]'"
        ) from None
    key = lock_key(tenant_id, stream)
    try:
        conn = psycopg2.connect(
            dsn, application_name=session_name(holder), connect_timeout=30, **KEEPALIVES
        )
    except psycopg2.Error as exc:
        raise LakeError(
            f"cannot reach the lake's PostgreSQL catalog for the sync lock: {exc}".strip()
        ) from None
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            if not cursor.fetchone()[0]:
                raise SyncAlreadyRunning(_refusal(cursor, key, tenant_id, stream))
        try:
            yield
        finally:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        conn.close()


def _refusal(cursor: object, key: int, tenant_id: str, stream: str) -> str:
    """The refusal, naming the session that holds the lock (run, pid, host, since when)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT a.application_name, a.client_addr::text, "
        "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
    )
    row = cursor.fetchone()  # type: ignore[attr-defined]
    who = ""
    if row:
        name, address, since = row
        who = f" ({name}{f' from {address}' if address else ''}, since {since})"
    return (
        f"tenant {tenant_id}: another {stream} sync of this tenant is running{who}; this one is "
        "refused so that Powens is not read twice. Nothing was fetched or written; the next run "
        "syncs once that one has finished."
    )
