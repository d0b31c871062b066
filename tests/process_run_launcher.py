"""A Dagster run launcher that starts each run as a process of its own with nothing of its
launcher's machine: its own HOME, TMPDIR and working directory, and only the environment
variables the instance names. What the Docker and Kubernetes run launchers do with a container
(`dagster api execute_run` in a fresh filesystem, with the `env_vars` the instance forwards), on
one machine without a container runtime: the scale-out proof's stand-in for them.

`DefaultRunLauncher` cannot be used for that: it asks the code server, which forks the run from
itself (its environment and working directory). Config (the instance's `run_launcher`):

    module: tests.process_run_launcher
    class: ProcessRunLauncher
    config:
      runs_root: /where/each/run/gets/a/folder
      env_vars: [PFO_LAKE_CATALOG, AWS_ACCESS_KEY_ID, ...]   # forwarded from the daemon's env
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from dagster import Array, Field, StringSource
from dagster import _check as check
from dagster._core.launcher.base import (
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData

PID_TAG = "pfo/run_worker_pid"
FOLDER_TAG = "pfo/run_worker_folder"
# What every process needs to start at all (never a setting of the product).
ALWAYS_FORWARDED = ("PATH", "LANG", "LC_ALL")


class ProcessRunLauncher(RunLauncher, ConfigurableClass):
    def __init__(
        self,
        runs_root: str,
        env_vars: list[str] | None = None,
        inst_data: ConfigurableClassData | None = None,
    ) -> None:
        self._inst_data = inst_data
        self.runs_root = Path(runs_root)
        self.env_vars = list(env_vars or [])
        self._workers: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {
            "runs_root": Field(StringSource, is_required=True),
            "env_vars": Field(Array(str), is_required=False),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> ProcessRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    def run_folder(self, run_id: str) -> Path:
        return self.runs_root / run_id

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = check.not_none(run.job_code_origin)
        command = ExecuteRunArgs(
            job_origin=origin,
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        ).get_command_args()
        folder = self.run_folder(run.run_id)
        home, tmp, work = folder / "home", folder / "tmp", folder / "work"
        for path in (home, tmp, work):
            path.mkdir(parents=True, exist_ok=True)
        names = [*ALWAYS_FORWARDED, *self.env_vars]
        env = {name: os.environ[name] for name in names if name in os.environ}
        env.update(HOME=str(home), TMPDIR=str(tmp), PWD=str(work))
        with (folder / "run.log").open("wb") as log:
            worker = subprocess.Popen(
                list(command),
                cwd=work,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with self._lock:
            self._workers[run.run_id] = worker
        threading.Thread(target=worker.wait, daemon=True).start()  # reaped when it ends
        self._instance.add_run_tags(run.run_id, {PID_TAG: str(worker.pid), FOLDER_TAG: str(folder)})

    def _pid(self, run: DagsterRun | None) -> int | None:
        text = run.tags.get(PID_TAG) if run else None
        return int(text) if text else None

    def terminate(self, run_id: str) -> bool:
        pid = self._pid(self._instance.get_run_by_id(run_id))
        if pid is None:
            return False
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            return True
        return False

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        with self._lock:
            worker = self._workers.get(run.run_id)
        if worker is not None:
            code = worker.poll()
            if code is None:
                return CheckRunHealthResult(WorkerStatus.RUNNING)
            status = WorkerStatus.SUCCESS if code == 0 else WorkerStatus.FAILED
            return CheckRunHealthResult(status, f"run worker exited with code {code}")
        pid = self._pid(run)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.NOT_FOUND, "no run worker was started")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return CheckRunHealthResult(WorkerStatus.NOT_FOUND, f"run worker {pid} is gone")
        return CheckRunHealthResult(WorkerStatus.RUNNING)
