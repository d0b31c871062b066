"""docs/deploy.md's `dagster.yaml` is a valid Dagster instance config that carries every setting
the project relies on, and forwards to each run what the lake needs (the scale-out proof runs the
same settings with a process launcher instead of Docker)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from pfo_pipeline.instance_config import PROJECT_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- deploy-dagster-yaml -->"


def deploy_yaml() -> str:
    text = (ROOT / "docs" / "deploy.md").read_text()
    found = re.search(re.escape(MARKER) + r"\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert found, "docs/deploy.md lost its dagster.yaml block"
    return found.group(1)


def test_the_documented_instance_config_is_valid_and_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "PFO_RUN_IMAGE",
                 "AWS_REGION"):  # fmt: skip
        monkeypatch.setenv(name, "x")
    (tmp_path / "dagster.yaml").write_text(deploy_yaml())
    config, _ = dagster_instance_config(str(tmp_path))  # Dagster's own schema check
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    queue = config["run_coordinator"]["config"]
    assert (
        queue["dequeue_interval_seconds"]
        == PROJECT_SETTINGS["run_queue"]["dequeue_interval_seconds"]
    )

    documented = yaml.safe_load(deploy_yaml())
    monitoring = dict(PROJECT_SETTINGS["run_monitoring"], max_resume_run_attempts=3)
    assert documented["run_monitoring"] == monitoring  # the Docker launcher can resume a run
    wanted_runs = PROJECT_SETTINGS["concurrency"]["runs"]
    assert (
        documented["concurrency"]["runs"]["tag_concurrency_limits"]
        == (wanted_runs["tag_concurrency_limits"])
    )
    assert documented["concurrency"]["pools"] == PROJECT_SETTINGS["concurrency"]["pools"]
    for key in ("telemetry", "nux"):
        assert documented[key] == PROJECT_SETTINGS[key]

    forwarded = set(documented["run_launcher"]["config"]["env_vars"])
    from tests.e2e.test_scale_out import RUN_ENV_VARS

    lake_and_storage = {n for n in RUN_ENV_VARS if n.startswith(("PFO_LAKE_", "AWS_"))}
    assert lake_and_storage <= forwarded
    assert {"DAGSTER_PG_PASSWORD", "PGPASSWORD", "PFO_TENANTS_FILE"} <= forwarded
    assert not [v for v in forwarded if "=" in v]  # names only: no value in the file
