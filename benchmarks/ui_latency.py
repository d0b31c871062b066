"""Benchmark: what an engineer waits for in the Dagster UI (docs/spec.md §11; issue 29's bars:
code location load <= 3 s, the demo family's ledger group <= 10 s launch-to-success, the marts
job <= 15 s, one overview partition <= 8 s, on a quiet machine).

    python -m benchmarks.ui_latency [--transactions 6000]

Starts, on a fresh instance (a new `DAGSTER_HOME` holding the project's instance configuration,
written by `scripts/_setup.sh` as for users), the emulator and `dagster dev` (webserver, daemon
and the code location's own server) in a temporary working directory. Then, through the
webserver's GraphQL API as the UI does, it launches one after the other:
- the `openbanking` asset group for the demo family's partition (the UI's "Materialize all" on
  the group, checks included), on the implicit asset job;
- the `build_analytics_marts` job;
- the `generate_openbanking_overview` job for the family and today.
Each run goes through the daemon's queue and a run worker process, as in production. Printed per
launch: launch-to-success (the bar), of which queued (launch to the run's start) and running.
Also printed: how long `dagster dev` took until its code location was loaded, and a code server
alone (`dagster api grpc`) from its start to serving (the code location load).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks._dagster_setup import run_environment
from benchmarks._emulator_process import (
    emulator_process,
    free_port,
)
from pfo_pipeline.knowledge import periods

TENANT = "tenant.family-office"
MODULE = "pfo_pipeline.definitions"
BIN = Path(sys.executable).parent

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status creationTime startTime endTime }
  }
}"""
LOCATION = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name loadStatus
        locationOrLoadError { __typename ... on RepositoryLocation { repositories { name } } }
      }
    }
  }
}"""
GROUP_ASSETS = """
query {
  assetNodes { assetKey { path } groupName }
}"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables or {}},
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    return body["data"]


@contextmanager
def dagster_dev(env: dict[str, str], workdir: Path, port: int) -> Iterator[subprocess.Popen]:
    """`dagster dev` in its own process group, ended whole on the way out."""
    log = open(workdir / "dagster_dev.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(BIN / "dagster"), "dev", "-m", MODULE, "-h", "127.0.0.1", "-p", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with_group = os.getpgid(process.pid)
        os.killpg(with_group, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(with_group, signal.SIGKILL)
            process.wait()
        log.close()


def wait_for_location(port: int, process: subprocess.Popen, started: float) -> tuple[float, str]:
    """Seconds from `dagster dev`'s start until its code location is loaded; the location name."""
    deadline = started + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("dagster dev exited; see dagster_dev.log")
        try:
            data = graphql(port, LOCATION)["workspaceOrError"]
        except (httpx.HTTPError, SystemExit):
            time.sleep(0.1)
            continue
        for entry in data.get("locationEntries", []):
            loaded = entry["locationOrLoadError"] or {}
            if entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation":
                return time.monotonic() - started, entry["name"]
            if loaded.get("__typename") == "PythonError":
                raise SystemExit(f"the code location failed to load: {loaded}")
        time.sleep(0.1)
    raise SystemExit("the code location did not load within 180 s")


def code_server_load(env: dict[str, str], workdir: Path) -> float:
    """A code server alone (`dagster api grpc`, what `dagster dev` starts for the location):
    seconds from its start until it answers, having loaded the definitions."""
    from dagster._grpc.client import DagsterGrpcClient

    port = free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "api", "grpc", "-m", MODULE,
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    try:
        while True:
            try:
                client.ping("load")
                return time.monotonic() - started
            except Exception:  # not serving yet
                if server.poll() is not None:
                    raise SystemExit("the code server exited while loading") from None
                time.sleep(0.02)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a gRPC server can miss a SIGTERM sent mid-start
            server.kill()
            server.wait()


def launch_and_wait(port: int, params: dict) -> dict[str, float]:
    """Launch as the UI does and poll until the run ends: launch-to-success, queued, running."""
    sent = time.time()
    result = graphql(port, LAUNCH, {"params": params})["launchPipelineExecution"]
    if result["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launch refused: {result}")
    run_id = result["run"]["runId"]
    while True:
        run = graphql(port, RUN, {"runId": run_id})["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(0.1)
    done = time.time()
    if run["status"] != "SUCCESS":
        raise SystemExit(f"run {run_id} ended {run['status']}; see the UI or dagster_dev.log")
    start = run["startTime"] or done
    return {"total": done - sent, "queued": start - sent, "running": done - start}


def selector(location: str, job: str, **extra: object) -> dict:
    return {
        "repositoryLocationName": location,
        "repositoryName": "__repository__",
        "pipelineName": job,
        **extra,
    }


def tags(**values: str) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in values.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=6000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="ui-latency-") as folder,
        emulator_process(args.transactions) as base_url,
    ):
        workdir = Path(folder)
        env = run_environment(workdir, base_url, TENANT)
        print(f"code server alone, start to serving: {code_server_load(env, workdir):.2f} s")
        port = free_port()
        started = time.monotonic()
        with dagster_dev(env, workdir, port) as process:
            load_s, location = wait_for_location(port, process, started)
            print(f"dagster dev, start to code location loaded: {load_s:.2f} s")
            ledger = [
                {"path": node["assetKey"]["path"]}
                for node in graphql(port, GROUP_ASSETS)["assetNodes"]
                if node["groupName"] == "openbanking"
            ]
            today = periods.today().isoformat()
            launches = {
                f"ledger group, {TENANT} (bar 10 s)": {
                    "selector": selector(location, "__ASSET_JOB", assetSelection=ledger),
                    "executionMetadata": {"tags": tags(**{"dagster/partition": TENANT})},
                },
                "build_analytics_marts (bar 15 s)": {
                    "selector": selector(location, "build_analytics_marts"),
                },
                f"overview {TENANT} {today} (bar 8 s)": {
                    "selector": selector(location, "generate_openbanking_overview"),
                    "executionMetadata": {
                        "tags": tags(
                            **{
                                "dagster/partition": f"{today}|{TENANT}",
                                "dagster/partition/day": today,
                                "dagster/partition/tenant": TENANT,
                            }
                        )
                    },
                },
            }
            for name, params in launches.items():
                figures = launch_and_wait(port, {"mode": "default", "runConfigData": {}, **params})
                print(
                    f"{name}: {figures['total']:.1f} s launch-to-success "
                    f"(queued {figures['queued']:.1f} s, running {figures['running']:.1f} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
