"""A fresh Dagster instance and tenants file for the benchmarks that run pfo as users do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from benchmarks._emulator_process import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

ROOT = Path(__file__).resolve().parents[1]


def instance_home(workdir: Path) -> Path:
    """A fresh DAGSTER_HOME with the project's instance configuration, written the way users get
    it (`scripts/_setup.sh`)."""
    home = workdir / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    subprocess.run(["bash", "-c", "source scripts/_setup.sh"], cwd=ROOT, env=env, check=True)
    if not (home / "dagster.yaml").is_file():
        raise SystemExit(f"scripts/_setup.sh wrote no instance configuration in {home}")
    return home


def tenants_file(workdir: Path, base_url: str, tenant_id: str) -> Path:
    """One sample tenant, pointed at this emulator, its secrets named `BENCH_CLIENT_ID` and
    `BENCH_CLIENT_SECRET` (the caller sets them)."""
    sample = yaml.safe_load((ROOT / "pfo_pipeline" / "sample_tenants.yaml").read_text())
    tenant = next(t for t in sample["tenants"] if t["tenant_id"] == tenant_id)
    binding = tenant["bindings"]["primaryOpenBanking"]
    binding["config"]["base_url"] = base_url
    binding["secrets"] = {"client_id": "BENCH_CLIENT_ID", "client_secret": "BENCH_CLIENT_SECRET"}
    path = workdir / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [tenant]}, sort_keys=False))
    return path


def run_environment(workdir: Path, base_url: str, tenant_id: str) -> dict[str, str]:
    """The environment pfo runs in, as a user's shell would hold it: this machine's variables
    without any project (`PFO_*`) or Dagster one, then a fresh instance, the one tenant pointed at
    this emulator, and a fresh lake, all inside `workdir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PFO_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(instance_home(workdir)),
            "PFO_TENANTS_FILE": str(tenants_file(workdir, base_url, tenant_id)),
            "PFO_LAKE_CATALOG": f"sqlite:{workdir / 'catalog.sqlite'}",
            "PFO_LAKE_DATA_PATH": f"{workdir / 'lake'}/",
            "BENCH_CLIENT_ID": DEMO_CLIENT_ID,
            "BENCH_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        }
    )
    return env
