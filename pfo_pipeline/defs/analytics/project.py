"""The dbt project the marts are built from, and what dbt needs to run on the lake.

dbt's manifest must exist before the dbt assets are built; `DbtProject.prepare_if_dev()` only
builds it under `dagster dev`, so `ensure_manifest` builds it whenever it is missing or older than
the dbt sources. It runs when the code location loads (the first load after a change to the dbt
project), never on import: tests, `dagster asset materialize`, CI and the demo need no `dbt parse`.
"""

import os
import shlex
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import cache, cached_property
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from pfo_pipeline import settings
from pfo_pipeline.lake import LakeLocation, object_store
from pfo_pipeline.lake.extensions import extension_directory

# Where dbt's profile finds the DuckDB extension wheels' folder (dbt_project/profiles.yml).
EXTENSIONS_ENV = "PFO_DUCKDB_EXTENSION_DIRECTORY"


@cache
def dbt_project() -> DbtProject:
    return DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)


class DbtNotFoundError(RuntimeError):
    """No dbt to build the marts with; the message says where to point and how to install one."""


_INSTALL_DBT = (
    "dbt lives in an environment of its own: `python3 -m venv .venv-dbt && .venv-dbt/bin/pip "
    "install -r dbt_project/requirements.txt` in the project (scripts/_setup.sh does it), or "
    f"set {settings.DBT_EXECUTABLE_ENV} to a dbt (dbt-core 1.11 with dbt-duckdb)"
)


def dbt_executable() -> str:
    """dbt: `PFO_DBT_EXECUTABLE`, else the project's dbt environment (`.venv-dbt/`), else a dbt
    installed beside this interpreter (an un-activated venv still finds it), else `dbt` on PATH;
    none of them is a `DbtNotFoundError` saying how to install it.

    Why dbt has an environment of its own: dagster-dbt imports dbt-core whenever it can, in every
    Dagster process (the code server, each run and step), about 1.1 s and 84 MB each, and this
    project uses none of it in process: dbt runs as a subprocess, row counts come from the lake."""
    configured = os.environ.get(settings.DBT_EXECUTABLE_ENV)
    if configured:
        if shutil.which(configured) is None:
            raise DbtNotFoundError(
                f"{settings.DBT_EXECUTABLE_ENV}={configured} is not an executable dbt. "
                + _INSTALL_DBT
            )
        return configured
    for candidate in (settings.DBT_ENV_DIR / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    if shutil.which("dbt") is None:
        raise DbtNotFoundError(f"dbt was not found. {_INSTALL_DBT}")
    return "dbt"


def installed_dbt_version(executable: str) -> Version | None:
    """The dbt-core version of a dbt that is a Python environment's console script (it starts
    that environment's interpreter), read from the environment's package metadata; None for
    anything else (dbt Fusion, a wrapper script), which is then asked."""
    found = shutil.which(executable)
    if found is None:
        return None
    script = Path(found)
    if _script_interpreter(script).parent != script.parent:
        return None
    site_packages = [str(p) for p in script.parent.parent.glob("lib/python3*/site-packages")]
    for distribution in distributions(name="dbt-core", path=site_packages):
        return Version(distribution.version)
    return None


def _script_interpreter(script: Path) -> Path:
    """The interpreter a console script starts: its `#!` line or, for a path too long for one,
    the `exec` line under `#!/bin/sh` that pip and uv write instead."""
    try:
        with script.open("rb") as head:
            lines = [head.readline(1024), head.readline(1024)]
    except OSError:
        return Path()
    if not lines[0].startswith(b"#!"):
        return Path()
    if lines[0].strip() == b"#!/bin/sh" and lines[1].startswith(b"'''exec' "):
        words = shlex.split(lines[1].decode(errors="replace"))  # exec, the interpreter, "$0", …
        return Path(words[1]) if len(words) > 1 else Path()
    return Path(lines[0][2:].decode(errors="replace").split()[0])


class LocalDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource, with two costs taken out of every build:

    - dbt's version is read from the package metadata of the environment the dbt executable
      belongs to, instead of asking `dbt --version` in a subprocess before every build (that
      imports all of dbt-core only to print it, about 2 s of CPU a run). Any other executable
      is still asked.
    - No dbt adapter is made in this process. dagster-dbt makes one (dbt's profile and macros
      loaded) only to fetch row counts and column metadata, which this lake cannot serve
      (`row_counts`); without dbt-core importable here it would log a traceback every build."""

    @cached_property
    def _cli_version(self) -> Version:
        installed = installed_dbt_version(self.dbt_executable)
        if installed is not None:
            return installed
        return DbtCliResource._cli_version.func(self)  # type: ignore[attr-defined]

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


# dbt target folders of the latest runs kept under `target/runs/` (compiled SQL and results,
# to look into a build); older ones are deleted.
KEPT_RUN_TARGETS = 10


def run_target_path(project: DbtProject, run_id: str) -> Path:
    """The dbt target folder of one run, after deleting all but the newest `KEPT_RUN_TARGETS - 1`
    runs' folders: dagster-dbt's default leaves a ~3 MB folder in the project for every run, for
    good (a daily schedule, a gigabyte a year)."""
    runs = project.project_dir / project.target_path / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    older = sorted(
        (folder for folder in runs.iterdir() if folder.is_dir() and folder.name != run_id),
        key=lambda folder: folder.stat().st_mtime,
    )
    for folder in older[: max(0, len(older) - (KEPT_RUN_TARGETS - 1))]:
        shutil.rmtree(folder, ignore_errors=True)
    return runs / run_id


def _sources_mtime(project_dir: Path) -> float:
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds"):
        files += [p for p in (project_dir / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files if p.exists())


def ensure_manifest(project: DbtProject) -> Path:
    """Parse the dbt project when its manifest is missing or stale; returns the manifest path."""
    manifest = project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _sources_mtime(project.project_dir):
        # Parsed with the extension folder the builds pass: dbt's partial parsing (the parse
        # each build starts from, dagster-dbt copies it) holds only for the same profile.
        with _environment({EXTENSIONS_ENV: extension_directory()}):
            LocalDbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
                ["parse", "--quiet"], target_path=project.target_path
            ).wait()
    return manifest


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set for the block (dagster-dbt passes dbt the process's)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_variables(location: LakeLocation) -> dict[str, str]:
    """What dbt's profile reads: the lake, the folder the DuckDB extension wheels install, and
    for a data path on S3 the same S3 settings and credentials as the pipeline's own secret."""
    return {
        **location.env(),
        EXTENSIONS_ENV: extension_directory(),
        **object_store.dbt_variables(location.resolved().data_path),
    }


def dbt_environment(location: LakeLocation) -> AbstractContextManager[None]:
    """`dbt_variables` set for the block (dagster-dbt starts dbt with this process's
    environment), and nothing left behind in the process after it."""
    return _environment(dbt_variables(location))
