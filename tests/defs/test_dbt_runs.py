"""How a dbt build runs: dbt's version is known without a `dbt --version` subprocess, and each
run's dbt target folder is kept with only the newest few (the builds themselves run in
tests/e2e/test_overview_pipeline.py, which also checks both on a real build)."""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from packaging.version import Version

from pfo_pipeline.defs.analytics import project
from pfo_pipeline.defs.resources import dbt_resource


def test_the_installed_dbts_version_is_read_without_running_it() -> None:
    with mock.patch(
        "dagster_dbt.core.resource.check_output", side_effect=AssertionError("ran dbt --version")
    ):
        assert dbt_resource()._cli_version == Version(version("dbt-core"))


def test_another_dbt_executable_is_still_asked_its_version(tmp_path: Path) -> None:
    (tmp_path / "dbt").write_text("#!/bin/sh\n")
    (tmp_path / "dbt").chmod(0o755)
    other = project.LocalDbtCliResource(
        project_dir=str(project.dbt_project().project_dir), dbt_executable=str(tmp_path / "dbt")
    )
    with mock.patch(
        "dagster_dbt.core.resource.check_output", return_value=b"Core:\n  - installed: 2.0.1\n"
    ) as asked:
        assert other._cli_version == Version("2.0.1")
    assert asked.call_args.args[0] == [str(tmp_path / "dbt"), "--version"]
    assert Path(sys.executable).parent != tmp_path


def test_only_the_newest_runs_dbt_targets_are_kept(tmp_path: Path) -> None:
    fake = SimpleNamespace(project_dir=tmp_path, target_path=Path("target"))
    runs = tmp_path / "target" / "runs"
    for age in range(15):  # run-0 is the oldest
        folder = runs / f"run-{age}"
        (folder / "compiled").mkdir(parents=True)
        os.utime(folder, (1_000_000 + age, 1_000_000 + age))
    target = project.run_target_path(fake, "run-new")  # type: ignore[arg-type]
    assert target == runs / "run-new"
    kept = sorted(p.name for p in runs.iterdir())
    newest = sorted(f"run-{age}" for age in range(15 - (project.KEPT_RUN_TARGETS - 1), 15))
    assert kept == newest
    # The same run (a retried step) keeps its own folder.
    target.mkdir()
    os.utime(target, (999_999, 999_999))
    assert project.run_target_path(fake, "run-new").exists()
