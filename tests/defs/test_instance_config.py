"""The Dagster instance settings the project writes: a new home gets them all, an existing home
gets the missing ones without losing the user's values, and Dagster loads the result."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef

from pfo_pipeline.instance_config import PROJECT_SETTINGS, write_instance_config

ROOT = Path(__file__).resolve().parents[2]
# What scripts/_setup.sh wrote before run monitoring: the homes of existing users.
OLD_HOME_CONFIG = """# Written by pfo-pipeline's scripts.
concurrency:
  pools:
    default_limit: 2
telemetry:
  enabled: false
nux:
  enabled: false
"""


def loaded(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def test_a_new_home_gets_every_setting_and_dagster_loads_them(tmp_path: Path) -> None:
    path = tmp_path / "dagster.yaml"
    assert write_instance_config(path) == (True, [])
    assert yaml.safe_load(path.read_text()) == PROJECT_SETTINGS
    with loaded(tmp_path) as instance:
        assert instance.run_monitoring_enabled
        settings = instance.run_monitoring_settings
        assert settings["free_slots_after_run_end_seconds"] > 0
        # The queue is looked at every second, and still limits runs per partition.
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert limits == PROJECT_SETTINGS["concurrency"]["runs"]["tag_concurrency_limits"]
        assert settings["max_resume_run_attempts"] == 0
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert limits == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
    assert write_instance_config(path) == (False, [])  # nothing to add a second time


def test_an_existing_home_gets_what_is_missing_and_keeps_its_own_values(tmp_path: Path) -> None:
    path = tmp_path / "dagster.yaml"
    path.write_text(OLD_HOME_CONFIG)
    changed, differs = write_instance_config(path)
    assert changed
    assert differs == ["concurrency.pools.default_limit is 2 here (the project uses 4)"]
    merged = yaml.safe_load(path.read_text())
    assert merged["concurrency"]["pools"]["default_limit"] == 2  # the user's value stays
    assert merged["run_monitoring"] == PROJECT_SETTINGS["run_monitoring"]
    assert (tmp_path / "dagster.yaml.bak").read_text() == OLD_HOME_CONFIG
    with loaded(tmp_path) as instance:
        assert instance.run_monitoring_enabled


def test_a_home_with_its_own_run_coordinator_is_told_what_to_add(tmp_path: Path) -> None:
    path = tmp_path / "dagster.yaml"
    path.write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n  config:\n    max_concurrent_runs: 5\n"
    )
    _, differs = write_instance_config(path)
    assert any("tag_concurrency_limits" in d and "run_coordinator" in d for d in differs)
    with loaded(tmp_path) as instance:  # still a configuration Dagster accepts
        assert instance.run_monitoring_enabled


def test_setup_completes_an_existing_home(tmp_path: Path) -> None:
    """What a user with an old home sees when sourcing scripts/_setup.sh."""
    (tmp_path / "dagster.yaml").write_text(OLD_HOME_CONFIG)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", "source scripts/_setup.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "added the project's Dagster settings" in done.stderr
    assert "default_limit is 2 here" in done.stderr
    assert yaml.safe_load((tmp_path / "dagster.yaml").read_text())["run_monitoring"]["enabled"]
