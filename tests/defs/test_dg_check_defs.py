"""`dg check defs`, run from the repository root as the README says, loads the code location with no
error and no warning (Dagster's current CLI, configured by pyproject's `[tool.dg]`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dg_check_defs_passes_from_the_repository_root() -> None:
    dg = Path(sys.executable).parent / "dg"
    assert dg.exists(), "dagster-dg-cli is a dependency: `dg` belongs in the project's venv"
    # The venv this test runs in is the active one (what `source scripts/_setup.sh` exports), so
    # dg loads the definitions with this interpreter, never through `uv run` or a venv of its own.
    env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
    done = subprocess.run(
        [str(dg), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    report = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, report  # dg exits 1 when the definitions fail to load
    assert "All definitions loaded successfully." in done.stdout, report
    assert "Warning" not in done.stdout + done.stderr, report


def test_dg_check_defs_passes_with_a_tenants_file_that_does_not_parse(tmp_path: Path) -> None:
    """A YAML syntax error leaves no tenant; the location still loads (the sensor reports it)."""
    broken = tmp_path / "tenants.yaml"
    broken.write_text("tenants:\n  - tenant_id: a\n    bindings: {primaryOpenBanking: [\n")
    dg = Path(sys.executable).parent / "dg"
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(Path(sys.executable).parents[1]),
        "PFO_TENANTS_FILE": str(broken),
    }
    done = subprocess.run(
        [str(dg), "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    report = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, report
    assert "All definitions loaded successfully." in done.stdout, report
    assert "not valid YAML at line 4, column 1" in done.stdout + done.stderr, report
    assert len((done.stdout + done.stderr).splitlines()) < 10, report  # no traceback
