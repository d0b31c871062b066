"""The code location's import discipline: importing any module does no I/O (no tenants file read,
no dbt run; both happen when the definitions load), and nothing outside `defs/` and
`definitions.py` imports the Dagster definitions (the layers run one way)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pfo_pipeline"

# Imports every module of the package with an audit hook recording files opened under the watched
# paths and every dbt process started; then loads the definitions, which must read the tenants file
# and dbt's manifest (proof that the hook sees what it is meant to see).
AUDITED_IMPORT = """
import importlib, json, os, pkgutil, sys
watched = tuple(json.loads(sys.argv[1]))
seen = []
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path.startswith(watched):
            seen.append("open " + path)
    elif event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system"):
        if "dbt" in repr(args[:2]):  # libraries may probe the platform (`file -b python`)
            seen.append(event + " " + repr(args[:2]))
sys.addaudithook(hook)
import pfo_pipeline
for module in pkgutil.walk_packages(pfo_pipeline.__path__, "pfo_pipeline."):
    importlib.import_module(module.name)
at_import = list(seen)
from pfo_pipeline.definitions import load_definitions
load_definitions().get_repository_def()
print(json.dumps({"at_import": at_import, "at_load": seen[len(at_import):]}))
"""


def test_importing_the_package_reads_no_tenants_file_and_runs_no_dbt(tmp_path: Path) -> None:
    tenants = tmp_path / "tenants.yaml"
    shutil.copy(PACKAGE / "sample_tenants.yaml", tenants)
    watched = [str(tenants), str(PACKAGE / "sample_tenants.yaml"), str(ROOT / "dbt_project")]
    result = subprocess.run(
        [sys.executable, "-c", AUDITED_IMPORT, json.dumps(watched)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "PFO_TENANTS_FILE": str(tenants)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["at_import"] == []
    assert any(event == f"open {tenants}" for event in report["at_load"]), report["at_load"]
    assert any("manifest.json" in event for event in report["at_load"]), report["at_load"]


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_outside_defs_imports_the_dagster_definitions() -> None:
    allowed = {PACKAGE / "definitions.py"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in allowed or (PACKAGE / "defs") in path.parents:
            continue
        imported = _imported_modules(ast.parse(path.read_text(), filename=str(path)))
        upward = sorted(
            name
            for name in imported
            if name == "pfo_pipeline.defs" or name.startswith("pfo_pipeline.defs.")
        )
        if upward:
            offenders.append(f"{path.relative_to(ROOT)}: {', '.join(upward)}")
    assert offenders == []
    # The scan sees what it is meant to see: definitions.py itself imports defs.
    assert any(
        name.startswith("pfo_pipeline.defs")
        for name in _imported_modules(ast.parse((PACKAGE / "definitions.py").read_text()))
    )
