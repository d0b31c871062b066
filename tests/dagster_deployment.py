"""Dagster as it runs across machines, on loopback, for the scale-out proofs: an instance on
PostgreSQL with the project's settings and a queue, a code server (gRPC), and `dagster-webserver`
and `dagster-daemon` reaching it through a workspace of one `grpc_server`."""

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
import yaml
from dagster._grpc.client import DagsterGrpcClient

from pfo_pipeline.instance_config import PROJECT_SETTINGS
from tests.postgres_server import PG_USER, free_port

ROOT = Path(__file__).resolve().parents[1]
MAX_CONCURRENT_RUNS = 4


def write_dagster_home(
    home: Path, pg_port: int, run_launcher: dict, *, max_runs: int = MAX_CONCURRENT_RUNS
) -> dict:
    """The instance as docs/deploy.md runs it: the project's settings (run monitoring, one run
    per partition, the lake pool), PostgreSQL storage, the queue, and this `run_launcher`.
    Compute logs are not captured: in production they go to object storage (the docs say how);
    here nothing of a run may land on the daemon's disk."""
    home.mkdir(parents=True, exist_ok=True)
    # The project's `run_queue` becomes this coordinator's own config (Dagster takes one or the other).
    project = {k: v for k, v in PROJECT_SETTINGS.items() if k != "run_queue"}
    config = {
        **project,
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
                **PROJECT_SETTINGS["run_queue"],
                "dequeue_use_threads": True,
                "dequeue_num_workers": max_runs,
            },
        },
        "run_launcher": run_launcher,
        "compute_logs": {
            "module": "dagster._core.storage.noop_compute_log_manager",
            "class": "NoOpComputeLogManager",
        },
        "concurrency": {
            **PROJECT_SETTINGS["concurrency"],
            "runs": {**PROJECT_SETTINGS["concurrency"]["runs"], "max_concurrent_runs": max_runs},
            "pools": {"default_limit": max_runs},
        },
    }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


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
def dagster_deployment(
    env: dict[str, str], tmp: Path, daemon_env: dict[str, str] | None = None
) -> Iterator[tuple[int, subprocess.Popen]]:
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
                env=daemon_env if name == "daemon" and daemon_env is not None else env,
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
