"""`pfo demo --local-s3`: the whole demo with the lake's files in a local S3 (SeaweedFS on
loopback, started and stopped by the demo), its catalog beside the working directory's data; a
second demo syncs into the same lake. No lake file lands on the local disk outside SeaweedFS's
own store, and no SeaweedFS is left running. (A real `pfo` process, twice: with the other
command-line proofs.)"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pfo_pipeline.emulator_process import free_port

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.cli_proofs


def weed_processes_under(folder: Path) -> list[int]:
    """SeaweedFS servers whose data folder is under `folder` (from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"weed") for a in args[:1]) and any(
            a.startswith(b"-dir=" + str(folder).encode()) for a in args
        ):
            found.append(int(cmdline.parent.name))
    return found


def test_the_demo_runs_on_a_local_s3_and_finds_its_lake_again(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PFO_", "AWS_", "DAGSTER_HOME"))
    }

    def demo() -> str:
        done = subprocess.run(
            [str(BIN / "pfo"), "demo", "--local-s3", "--port", str(free_port()),
             "--transactions", "300"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        return output

    catalog = tmp_path / "data" / "pfo_catalog_s3.sqlite"

    def snapshots() -> int:
        with sqlite3.connect(catalog) as db:
            (data_path,) = db.execute(
                "SELECT value FROM ducklake_metadata WHERE key = 'data_path'"
            ).fetchone()
            assert data_path == "s3://pfo-demo/lake/"
            return db.execute("SELECT count(*) FROM ducklake_snapshot").fetchone()[0]

    first = demo()
    assert "Local S3 (SeaweedFS) on http://127.0.0.1:" in first
    assert "What landed in the ledger:" in first and "Financial overview (month)" in first
    assert f"sqlite:{catalog} + s3://pfo-demo/lake/" in first
    assert weed_processes_under(tmp_path) == []
    assert not list(tmp_path.rglob("*.parquet"))  # the lake's files are objects in SeaweedFS
    assert (tmp_path / "data" / "local-s3").is_dir()
    after_first = snapshots()

    second = demo()  # the same lake, found again in the restarted store: it reads, and adds to it
    assert "What landed in the ledger:" in second and "Financial overview (month)" in second
    assert snapshots() > after_first
    assert weed_processes_under(tmp_path) == []
