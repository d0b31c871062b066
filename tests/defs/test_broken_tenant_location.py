"""One broken tenant in the tenants file: the code location still loads with the other tenants'
jobs, and the `tenants_file_problems` sensor fails naming the broken tenant and key."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pfo_pipeline import settings

PROBE = """
import json
import dagster as dg
from pfo_pipeline.definitions import load_definitions
from pfo_pipeline.defs.partitions import tenant_partitions

defs = load_definitions()
jobs = sorted(job.name for job in defs.resolve_all_job_defs())
sensor = defs.resolve_sensor_def("tenants_file_problems")
try:
    sensor(dg.build_sensor_context())
    outcome = "passed"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(json.dumps({
    "tenants": tenant_partitions().get_partition_keys(),
    "jobs": jobs,
    "sensor": outcome,
}))
"""


def probe(tenants_file: Path, tmp_path: Path) -> dict:
    env = {**os.environ, "PFO_TENANTS_FILE": str(tenants_file), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_broken_tenant_is_left_out_and_named_while_the_rest_keeps_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = yaml.safe_load(settings.SAMPLE_TENANTS_FILE.read_text())
    broken = copy.deepcopy(document)
    broken["tenants"][1]["bindings"]["primaryOpenBanking"]["config"]["environment"] = "staging"
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))

    seen = probe(path, tmp_path)
    assert seen["tenants"] == ["tenant.family-office"]
    assert {"sync_openbanking_transactions", "build_analytics_marts"} <= set(seen["jobs"])
    assert seen["sensor"].startswith("TenantsFileProblem: 1 tenant(s) left out until fixed")
    assert "tenant 'tenant.second-family'" in seen["sensor"]
    assert "bindings.primaryOpenBanking.config.environment" in seen["sensor"]

    # Fixed: the sensor passes again (the same sensor, evaluated here).
    from pfo_pipeline.defs.ledger.automation import tenants_file_problems

    path.write_text(yaml.safe_dump(document, sort_keys=False))
    monkeypatch.setenv("PFO_TENANTS_FILE", str(path))
    skip = tenants_file_problems(dg.build_sensor_context())
    assert isinstance(skip, dg.SkipReason) and "all 2 tenants load" in (skip.skip_message or "")
