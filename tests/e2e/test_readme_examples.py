"""The README's `pfo sql` examples run as written on a fresh demo lake, and `--as-of` reads Paris
time, takes offsets and answers a moment before the lake with where the lake starts.

The lake is made by `pfo demo` itself, on a port other than the default one (its emulator's
address reaches the sample tenants through `${PFO_POWENS_BASE_URL:-…}`), in a working directory
whose `.env` points elsewhere (the demo's own settings win over it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from pfo_pipeline.lake import LakeLocation
from tests.e2e.test_ui_end_to_end import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Real dagster, dg and pfo processes, about a minute and a half: a CI step of their own.
pytestmark = pytest.mark.cli_proofs
PARIS = ZoneInfo("Europe/Paris")


def readme_sql_blocks() -> list[str]:
    """Every ```bash block of the README that runs `pfo sql`, with its indentation removed."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", text, flags=re.MULTILINE | re.DOTALL)
    found = []
    for indent, body in blocks:
        lines = [line.removeprefix(indent) for line in body.splitlines()]
        if any(line.lstrip().startswith("pfo sql") for line in lines):
            found.append("\n".join(lines))
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("demo")
    lake = LakeLocation.in_folder(tmp / "ledger")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PFO_", "DAGSTER_HOME"))}
    env.update(lake.env())
    # The demo runs the sample tenants on its own emulator, whatever these point at.
    (tmp / ".env").write_text(
        "PFO_TENANTS_FILE=/nowhere/tenants.yaml\nPFO_POWENS_BASE_URL=http://127.0.0.1:9/2.0\n"
    )
    port = free_port()
    done = subprocess.run(
        [str(BIN / "pfo"), "demo", "--port", str(port), "--transactions", "600"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    yield {"tmp": tmp, "env": env, "output": done.stdout + done.stderr, "port": port}


def test_the_demo_runs_on_another_port_without_editing_the_tenants_file(demo) -> None:
    assert f"Powens emulator on http://127.0.0.1:{demo['port']}/2.0" in demo["output"]
    assert "What landed in the ledger:" in demo["output"]
    assert " - WARNING - " not in demo["output"]  # a healthy run warns nothing
    # Its emulator ran in a process of its own, stopped when the demo ended.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{demo['port']}/2.0/connectors", timeout=2)


def test_the_readme_sql_examples_run_as_written(demo, tmp_path: Path) -> None:
    blocks = readme_sql_blocks()
    assert len(blocks) >= 5  # the analysts' block and the four questions
    env = {**demo["env"], "PATH": f"{BIN}{os.pathsep}{demo['env']['PATH']}"}
    for block in blocks:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, f"{block}\n---\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "Error" not in done.stderr, done.stderr
    assert (tmp_path / "categories.csv").read_bytes().count(b"\r") == 0  # \n line ends


def _sql(demo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "pfo"), "sql", *args], cwd=demo["tmp"], env=demo["env"], capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def _lake_start(demo) -> datetime:
    done = _sql(demo, "--csv", "SELECT min(snapshot_time) FROM lake.snapshots()")
    return datetime.fromisoformat(done.stdout.splitlines()[1])


def test_as_of_reads_paris_time_and_takes_offsets(demo) -> None:
    query = "SELECT count(*) AS n FROM ledger.bank_transactions"
    now = datetime.now(UTC) + timedelta(seconds=1)
    paris = now.astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
    utc_z = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    offset = now.astimezone(ZoneInfo("Asia/Tokyo")).isoformat()
    expected = _sql(demo, "--csv", query).stdout
    for moment in (paris, utc_z, offset):
        done = _sql(demo, "--csv", "--as-of", moment, query)
        assert done.returncode == 0, done.stderr
        assert done.stdout == expected  # the same moment, however written
        assert f"as of {paris} Europe/Paris" in done.stderr  # it says which moment it read
    # A naive time is Paris time: read as UTC it would be an hour or two later than meant.
    before = (_lake_start(demo) - timedelta(minutes=30)).astimezone(PARIS)
    early = _sql(demo, "--as-of", before.strftime("%Y-%m-%d %H:%M:%S"), query)
    assert early.returncode != 0
    start = _lake_start(demo).astimezone(PARIS).strftime("%Y-%m-%d %H:%M:%S")
    assert f"the lake starts at {start} Europe/Paris" in early.stderr, early.stderr
    assert "cannot open the lake" not in early.stderr
    bad = _sql(demo, "--as-of", "yesterday", query)
    assert bad.returncode != 0 and "'yesterday' is not a time" in bad.stderr
