"""Extension files whose signature DuckDB has already checked, remembered across processes.

DuckDB checks an extension's signature on every LOAD by reading the whole file (~50 MB, 0.15 s
each: a third of a second before `pfo sql` or a run's first query can touch the lake). The file
does not change between processes: once a checked LOAD has succeeded, its identity (device,
inode, size, modification and change times) goes into a stamp in the user's cache folder, and a
later process loading the very same file skips the check. Any change to the file (written,
replaced, reinstalled, even `touch`ed: the change time cannot be set back) no longer matches, so
that file is checked again. Without a writable cache folder every process checks.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

# LOAD names whose files are named otherwise.
FILE_NAMES = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}


def stamp_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "pfo_pipeline" / "checked-duckdb-extensions.json"


def _extension_file(directory: str, name: str) -> Path | None:
    """The one file of `name` under the extension folder (DuckDB adds version and platform)."""
    found = list(Path(directory).glob(f"*/*/{FILE_NAMES.get(name, name)}.duckdb_extension"))
    return found[0].resolve() if len(found) == 1 else None


def _identity(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _read_stamps() -> dict[str, list[int]]:
    try:
        stamps = json.loads(stamp_file().read_text())
    except (OSError, ValueError):
        return {}
    return stamps if isinstance(stamps, dict) else {}


def already_checked(directory: str, extensions: tuple[str, ...]) -> bool:
    """Whether a checked LOAD of each of these very files succeeded before, in any process."""
    stamps = _read_stamps()
    for name in extensions:
        path = _extension_file(directory, name)
        if path is None or stamps.get(str(path)) != _identity(path):
            return False
    return True


def remember_checked(directory: str, extensions: tuple[str, ...]) -> None:
    """Record these files as checked; a cache folder that cannot be written changes nothing."""
    stamps = _read_stamps()
    for name in extensions:
        path = _extension_file(directory, name)
        if path is not None:
            stamps[str(path)] = _identity(path)
    target = stamp_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False) as handle:
            json.dump(stamps, handle)
        os.replace(handle.name, target)  # whole, or not at all: a reader never sees half a file
    except OSError:
        return
