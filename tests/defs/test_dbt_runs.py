"""How a dbt build runs: dbt comes from an environment of its own (no Dagster process imports
dbt-core), its version is known without a `dbt --version` subprocess, and each
run's dbt target folder is kept with only the newest few (the builds themselves run in
tests/e2e/test_overview_pipeline.py, which also checks both on a real build)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from packaging.version import Version

from pfo_pipeline import settings
from pfo_pipeline.defs.analytics import project
from pfo_pipeline.defs.resources import dbt_resource


def test_the_installed_dbts_version_is_read_without_running_it() -> None:
    resource = dbt_resource()
    assert Path(resource.dbt_executable) == settings.DBT_ENV_DIR / "bin" / "dbt"
    with mock.patch(
        "dagster_dbt.core.resource.check_output", side_effect=AssertionError("ran dbt --version")
    ):
        installed = resource._cli_version
    # What `dbt --version` says, asked once here.
    said = subprocess.run(
        [resource.dbt_executable, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {installed}" in said


def _fake_environment(root: Path, shebang: str, dbt_core: str | None) -> Path:
    """A Python environment's layout: `bin/dbt` with its first line, and dbt-core's metadata."""
    (root / "bin").mkdir(parents=True)
    script = root / "bin" / "dbt"
    script.write_text(f"{shebang}\nimport sys\n")
    script.chmod(0o755)
    if dbt_core is not None:
        info = root / "lib" / "python3.11" / "site-packages" / f"dbt_core-{dbt_core}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: dbt-core\nVersion: {dbt_core}\n"
        )
    return script


def test_a_dbt_in_another_environment_is_read_from_that_environment(tmp_path: Path) -> None:
    script = _fake_environment(tmp_path / "env", f"#!{tmp_path}/env/bin/python", "1.11.7")
    assert project.installed_dbt_version(str(script)) == Version("1.11.7")
    # A script whose interpreter is elsewhere, or an environment without dbt-core: not known.
    other = _fake_environment(tmp_path / "other", "#!/usr/bin/python3", "1.11.7")
    assert project.installed_dbt_version(str(other)) is None
    bare = _fake_environment(tmp_path / "bare", f"#!{tmp_path}/bare/bin/python", None)
    assert project.installed_dbt_version(str(bare)) is None
    assert project.installed_dbt_version(str(tmp_path / "missing")) is None
    # A path too long for a `#!` line: pip and uv start the interpreter from `/bin/sh`.
    long_env = tmp_path / "long"
    trampoline = "#!/bin/sh\n'''exec' \"" + f"{long_env}/bin/python" + '" "$0" "$@"\n\' \'\'\''
    long_script = _fake_environment(long_env, trampoline, "1.11.9")
    assert project.installed_dbt_version(str(long_script)) == Version("1.11.9")
    bare_trampoline = f"#!/bin/sh\n'''exec' {tmp_path}/plain/bin/python \"$0\" \"$@\"\n' '''"
    plain_script = _fake_environment(tmp_path / "plain", bare_trampoline, "1.11.8")
    assert project.installed_dbt_version(str(plain_script)) == Version("1.11.8")


def test_another_dbt_executable_is_still_asked_its_version(tmp_path: Path) -> None:
    (tmp_path / "dbt").write_bytes(b"\x7fELF not a script")
    (tmp_path / "dbt").chmod(0o755)
    other = project.LocalDbtCliResource(
        project_dir=str(project.dbt_project().project_dir), dbt_executable=str(tmp_path / "dbt")
    )
    with mock.patch(
        "dagster_dbt.core.resource.check_output", return_value=b"Core:\n  - installed: 2.0.1\n"
    ) as asked:
        assert other._cli_version == Version("2.0.1")
    assert asked.call_args.args[0] == [str(tmp_path / "dbt"), "--version"]


def test_the_dbt_executable_set_in_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _fake_environment(tmp_path / "own", f"#!{tmp_path}/own/bin/python", "1.11.7")
    monkeypatch.setenv(settings.DBT_EXECUTABLE_ENV, str(own))
    assert project.dbt_executable() == str(own)
    monkeypatch.delenv(settings.DBT_EXECUTABLE_ENV)
    assert project.dbt_executable() == str(settings.DBT_ENV_DIR / "bin" / "dbt")


def test_no_dbt_is_a_clear_error_naming_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.DBT_EXECUTABLE_ENV, str(tmp_path / "missing" / "dbt"))
    with pytest.raises(project.DbtNotFoundError, match=r"PFO_DBT_EXECUTABLE=.*is not an execut"):
        project.dbt_executable()
    # Nothing set, no project environment, none beside the interpreter, none on PATH.
    monkeypatch.delenv(settings.DBT_EXECUTABLE_ENV)
    monkeypatch.setattr(settings, "DBT_ENV_DIR", tmp_path / "no-env")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(project.DbtNotFoundError, match=r"requirements\.txt"):
        project.dbt_executable()


def test_no_dbt_adapter_is_made_in_the_dagster_process() -> None:
    """dagster-dbt's in-process adapter (dbt's profile and macros loaded) serves only the row
    counts and column metadata this lake cannot give; it is never made."""
    assert dbt_resource()._initialize_dbt_core_adapter(["build"]) is None


def test_dagster_processes_load_the_code_location_without_dbt_core() -> None:
    """The code location (what every code server, run and step loads) imports no dbt-core: it
    lives in dbt's own environment, and dagster-dbt imports it whenever it can (~1.1 s)."""
    probe = (
        "import sys, pfo_pipeline.definitions as d; d.load_definitions(); "
        "print(sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


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
