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


BROKEN_YAML = (
    "tenants:\n  - tenant_id: tenant.family-office\n    bindings: {primaryOpenBanking: [\n"
)


def test_a_yaml_syntax_error_leaves_no_tenant_and_the_sensor_names_line_and_column(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(BROKEN_YAML)
    seen = probe(path, tmp_path)
    assert seen["tenants"] == []  # the location loads, with no tenant
    assert {"sync_openbanking_transactions", "build_analytics_marts"} <= set(seen["jobs"])
    assert seen["sensor"].startswith(f"TenantsFileProblem: tenants file {path}: not valid YAML")
    assert "at line 4, column 1" in seen["sensor"]
    assert seen["sensor"].endswith("no tenant loads until it is fixed")


def test_the_sensor_warns_once_per_change_not_at_every_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from pfo_pipeline.defs.ledger.automation import tenants_file_problems

    path = tmp_path / "tenants.yaml"
    path.write_text(settings.SAMPLE_TENANTS_FILE.read_text())
    monkeypatch.setenv("PFO_TENANTS_FILE", str(path))
    for name in settings.DEMO_ENV:
        monkeypatch.delenv(name, raising=False)

    def tick(cursor: str | None) -> tuple[int, str | None, str]:
        """(warnings the sensor logged, its cursor after, its skip message)."""
        capfd.readouterr()
        context = dg.build_sensor_context(cursor=cursor)
        skip = tenants_file_problems(context)
        logged = capfd.readouterr()
        warnings = [
            line for line in (logged.out + logged.err).splitlines() if " - WARNING - " in line
        ]
        assert all("is not set" in line for line in warnings)
        return len(warnings), context.cursor, skip.skip_message or ""

    warned, cursor, said = tick(None)
    assert warned == 6 and cursor and "6 secret variable(s) not set here" in said
    assert tick(cursor)[:2] == (0, cursor)  # the next tick, nothing changed: no warning
    assert tick(cursor)[:2] == (0, cursor)
    path.write_text(path.read_text() + "# edited\n")  # the file changed: warned again
    warned, edited, _ = tick(cursor)
    assert warned == 6 and edited != cursor
    monkeypatch.setenv("PFO_DEMO_POWENS_WEBHOOK_SECRET", "set-now")  # what is unset changed
    warned, fewer, said = tick(edited)
    assert warned == 4 and fewer != edited and "4 secret variable(s)" in said
    assert tick(fewer)[0] == 0
