"""Run a command as users do and measure it from outside: wall time from start to exit, and the
peak resident memory of every process it starts (the CLI, a run worker, dbt, ...).

Peaks come from the kernel: each process's own high-water mark (`VmHWM` in `/proc/<pid>/status`),
read for every process of the tree every few milliseconds (so a peak between two samples is
still seen), and, for processes that ended between two samples, the largest high-water mark of any
process this one has waited for (`RUSAGE_CHILDREN`), so no process escapes the figure.
"""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SAMPLE_EVERY_S = 0.02


@dataclass
class ProcessPeak:
    pid: int
    command: str
    peak_mb: float


@dataclass
class CommandRun:
    """What a measured command did: exit code, wall seconds, output, each process's peak."""

    returncode: int
    wall_s: float
    stdout: str
    stderr: str
    processes: list[ProcessPeak] = field(default_factory=list)
    # The kernel's largest peak of any process waited for so far (an upper bound for the tree).
    waited_peak_mb: float = 0.0

    @property
    def peak_mb(self) -> float:
        """The largest peak of any one process."""
        return max([self.waited_peak_mb, *(p.peak_mb for p in self.processes)])

    def describe_peaks(self, top: int = 4) -> str:
        biggest = sorted(self.processes, key=lambda p: p.peak_mb, reverse=True)[:top]
        return ", ".join(f"{p.command} {p.peak_mb:.0f} MB" for p in biggest)


def _high_water_mb(pid: int) -> float | None:
    """The kernel's peak resident set of `pid` (VmHWM), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _label(process: psutil.Process) -> str:
    """A short name for a process: its program and first meaningful argument."""
    try:
        argv = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"
    words = [Path(a).name for a in argv[:4] if not a.startswith("-")]
    return " ".join(words[:3]) or "?"


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float = 1800,
) -> CommandRun:
    """Run `argv` to its end, sampling its process tree; output is captured to files (a pipe that
    fills would stall the command, not the measure)."""
    out_path, err_path = cwd / ".bench-stdout", cwd / ".bench-stderr"
    peaks: dict[int, ProcessPeak] = {}
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdout=out, stderr=err)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            if time.perf_counter() - started > timeout_s:
                proc.kill()
                break
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            for process in tree:
                peak = _high_water_mb(process.pid)
                if peak is None:
                    continue
                seen = peaks.get(process.pid)
                if seen is None:
                    peaks[process.pid] = ProcessPeak(process.pid, _label(process), peak)
                elif peak > seen.peak_mb:
                    seen.peak_mb = peak
            time.sleep(SAMPLE_EVERY_S)
        wall = time.perf_counter() - started
    proc.wait()
    return CommandRun(
        proc.returncode,
        wall,
        out_path.read_text(),
        err_path.read_text(),
        list(peaks.values()),
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )
