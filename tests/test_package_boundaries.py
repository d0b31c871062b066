"""The product and the emulator stand apart: `pfo_pipeline` never imports `powens_emulator` (not
by an import statement, not by `importlib`/`__import__` or an import-path string, not lazily) and
`powens_emulator` imports nothing of `pfo_pipeline`. The product reaches the emulator only as a
program (`python -m powens_emulator`, in a process of its own) or over HTTP; `pfo emulator` is
the emulator's own command, which `pfo` finds by entry point."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT, EMULATOR = "pfo_pipeline", "powens_emulator"


def references(source: str, package: str) -> list[str]:
    """Every way `source` imports `package` or names one of its modules to import: import
    statements (relative ones stay inside their own package), and any string that is an import
    path of it (`pkg`, `pkg.module`, `pkg.module:attr`, as `importlib.import_module`,
    `__import__`, `runpy` or an entry point take them). The one string allowed is the program
    name after `-m` in a command line: a process of its own, not an import."""
    tree = ast.parse(source)
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple):
            for before, item in zip(node.elts, node.elts[1:], strict=False):
                if isinstance(before, ast.Constant) and before.value == "-m":
                    allowed.add(id(item))
    import_path = re.compile(rf"{package}(\.\w+)*(:[\w.]+)?")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in allowed or not import_path.fullmatch(node.value):
                continue
            names = [node.value]
        else:
            continue
        found += [
            f"line {node.lineno}: {name}"
            for name in names
            if name == package or name.startswith((f"{package}.", f"{package}:"))
        ]
    return found


def offenders(directory: str, package: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} {found}"
        for path in sorted((ROOT / directory).rglob("*.py"))
        for found in references(path.read_text(), package)
    ]


def test_the_product_never_imports_the_emulator() -> None:
    scanned = list((ROOT / PRODUCT).rglob("*.py"))
    assert len(scanned) > 100  # the whole package, sub-packages included
    assert offenders(PRODUCT, EMULATOR) == []


def test_the_emulator_imports_nothing_of_the_product() -> None:
    assert len(list((ROOT / EMULATOR).glob("*.py"))) > 20
    assert offenders(EMULATOR, PRODUCT) == []


@pytest.mark.parametrize(
    "source",
    [
        "import powens_emulator",
        "import powens_emulator.cli as cli",
        "from powens_emulator import start_emulator",
        "from powens_emulator.runner import EmulatorConfig",
        "def f():\n    from powens_emulator.cli import emulator_cli",  # lazily
        "importlib.import_module('powens_emulator.cli')",
        "__import__('powens_emulator')",
        "runpy.run_module('powens_emulator', run_name='__main__')",
        "EntryPoint('emulator', 'powens_emulator.cli:emulator_cli', 'pfo_pipeline.commands')",
        "NAME = 'powens_emulator.runner'",
    ],
)
def test_the_scan_sees_every_way_to_import(source: str) -> None:
    assert references(source, EMULATOR), source


@pytest.mark.parametrize(
    "source",
    [
        "COMMAND = (sys.executable, '-m', 'powens_emulator', 'serve')",  # its own process
        "subprocess.run([sys.executable, '-m', 'powens_emulator', 'serve', '--port', '0'])",
        '"""Starts the emulator (`python -m powens_emulator serve`) in its own process."""',
        "ENV = 'POWENS_EMULATOR_CLIENT_SECRET'",
        "import pfo_pipeline.cli",
    ],
)
def test_the_scan_lets_a_process_boundary_and_prose_through(source: str) -> None:
    assert references(source, EMULATOR) == [], source


def test_importing_every_product_module_loads_no_emulator_module() -> None:
    """What the scan says, at run time: every module of the package imported, the `pfo` command
    tree built, and no `powens_emulator` module in `sys.modules`."""
    script = (
        "import importlib, pkgutil, sys\n"
        "import pfo_pipeline\n"
        "names = [m.name for m in pkgutil.walk_packages(pfo_pipeline.__path__, 'pfo_pipeline.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "from pfo_pipeline.cli import main\n"
        "print(len(names), sorted(m for m in sys.modules if m.split('.')[0] == 'powens_emulator'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count, loaded = result.stdout.split(" ", 1)
    assert int(count) > 100 and loaded.strip() == "[]", result.stdout


def test_the_emulator_is_installed_as_a_package_and_a_pfo_command() -> None:
    """The packaging says so: `powens_emulator` is installed beside the product, and its command
    is registered under `pfo`'s entry-point group (what `pfo` reads)."""
    import tomllib
    from importlib.metadata import entry_points

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "powens_emulator*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
    [entry] = [e for e in entry_points(group="pfo_pipeline.commands") if e.name == "emulator"]
    assert entry.value == "powens_emulator.cli:emulator_cli"
