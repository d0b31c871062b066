"""Where a load stages its batches: a private folder that outlives no process.

Staged batches are full rows (IBANs, wordings) until the commit. Each load gets a folder (mode
0700) under one per-user root (`PFO_STAGE_DIR`, default `<temp>/pfo-stage-<uid>`, also 0700),
with an owner marker: this host, the process id and the process's start time. A load that ends
removes its folder; a process killed meanwhile (SIGKILL, the OOM killer) cannot, so every new
stage first removes the folders whose owner process is gone (a pid reused by another process
does not count: its start time differs). Folders of live processes and of other hosts (a root
on shared storage) are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path

STAGE_DIR_ENV = "PFO_STAGE_DIR"
OWNER_FILE = "owner.json"
# A folder without its marker is one whose process died between creating it and writing the
# marker (a few microseconds): removed once this old.
UNMARKED_GRACE_S = 3600.0
# Folders `pfo-stage-*` directly in the temp folder, from versions before the private root.
LEGACY_PREFIX = "pfo-stage-"
LEGACY_GRACE_S = 24 * 3600.0

logger = logging.getLogger("pfo_pipeline.ledger.stage")


class StageFolderError(RuntimeError):
    """The staging root cannot be made private; says what to do."""


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 else None  # field 22 of the whole line


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is None:
        return True
    return _process_start(pid) in (None, started)


def stage_root() -> Path:
    """The per-user root, created private; refused if another user owns it or it is a link."""
    root = Path(
        os.environ.get(STAGE_DIR_ENV) or Path(tempfile.gettempdir()) / f"pfo-stage-{os.getuid()}"
    )
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StageFolderError(
            f"cannot make the staging folder {root} ({exc.strerror}): set {STAGE_DIR_ENV} to a "
            "folder of your own"
        ) from None
    info = root.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        raise StageFolderError(
            f"the staging folder {root} is a link or belongs to another user: staged rows hold "
            f"IBANs and wordings, so set {STAGE_DIR_ENV} to a folder of your own"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        root.chmod(0o700)
    return root


class StageFolder:
    """One load's private folder; `cleanup()` removes it (idempotent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def new_stage_folder() -> StageFolder:
    """A fresh private folder for one load, after removing what dead loads left."""
    root = stage_root()
    sweep_stale(root)
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))  # mode 0700
    owner = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": _process_start(os.getpid()),
    }
    (path / OWNER_FILE).write_text(json.dumps(owner))
    return StageFolder(path)


def sweep_stale(root: Path, *, now: float | None = None) -> list[Path]:
    """Remove the stage folders whose owner process is gone; the folders removed."""
    now = time.time() if now is None else now
    removed = [folder for folder in _children(root) if _is_stale(folder, now)]
    removed += _stale_legacy(root, now)
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    if removed:
        logger.info("Removed %d staging folder(s) left by loads that died", len(removed))
    return removed


def _children(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _is_stale(folder: Path, now: float) -> bool:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        try:
            return now - folder.stat().st_mtime > UNMARKED_GRACE_S
        except OSError:
            return False
    if owner.get("host") != socket.gethostname():
        return False
    return not _alive(int(owner.get("pid", -1)), owner.get("started"))


def _stale_legacy(root: Path, now: float) -> list[Path]:
    """Old versions' `pfo-stage-*` folders in the temp folder (no marker): by age only."""
    if os.environ.get(STAGE_DIR_ENV):
        return []
    temp = Path(tempfile.gettempdir())
    stale = []
    for folder in temp.glob(f"{LEGACY_PREFIX}*"):
        try:
            info = folder.lstat()
        except OSError:
            continue
        if folder == root or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if now - info.st_mtime > LEGACY_GRACE_S:
            stale.append(folder)
    return stale
