"""`pfo demo` runs its emulator as a process of its own and stops it when the demo is interrupted:
Ctrl-C or SIGTERM sent to the demo alone (not to its process group, so the emulator gets no signal
of its own) while it syncs ends the demo ("Aborted!", even where the in-process Dagster run drops
the signal), leaves no emulator behind and the port free. (The demo run to the end is
tests/e2e/test_readme_examples.py, and `bash scripts/demo.sh`.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pfo_pipeline.emulator_process import free_port
from pfo_pipeline.lake import LakeLocation

BIN = Path(sys.executable).parent
# Three real `pfo demo` processes, about half a minute: with the other command-line proofs.
pytestmark = pytest.mark.cli_proofs
# Ctrl-C at its default action, as in a terminal's foreground job: a suite started in the
# background (`bash scripts/test.sh &`) inherits SIGINT ignored, and so would the demo.
AS_A_FOREGROUND_JOB = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    "signum, moment",
    [
        (signal.SIGINT, "Syncing "),
        # Once the first load committed: where the in-process run drops a signal it captured.
        (signal.SIGINT, "transactions sync: committed"),
        (signal.SIGTERM, "transactions sync: committed"),
    ],
    ids=["ctrl-c-at-start", "ctrl-c-in-a-run", "sigterm-in-a-run"],
)
def test_an_interrupted_demo_stops_its_emulator(tmp_path: Path, signum: int, moment: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PFO_", "DAGSTER_HOME"))}
    env.update(LakeLocation.in_folder(tmp_path / "ledger").env())
    port = free_port()
    demo = subprocess.Popen(
        [
            *AS_A_FOREGROUND_JOB,
            str(BIN / "pfo"),
            "demo",
            "--port",
            str(port),
            "--transactions",
            "300",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = []
        for line in demo.stdout:  # the emulator answered and the first sync is under way
            output.append(line)
            if moment in line:
                break
        assert moment in output[-1], "".join(output)
        [emulator] = [
            pid for pid in children(demo.pid) if b"powens_emulator" in _cmdline(pid)
        ] or pytest.fail(f"no emulator process under the demo: {children(demo.pid)}")
        assert httpx.get(f"http://127.0.0.1:{port}/2.0/connectors", timeout=5).status_code == 200
        demo.send_signal(signum)
        rest, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 1 and rest.rstrip().endswith("Aborted!"), "".join(output) + rest
    if alive(emulator):
        os.kill(emulator, signal.SIGKILL)  # not left running for the tests after this one
        pytest.fail("the emulator outlived the demo")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/2.0/connectors", timeout=2)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
