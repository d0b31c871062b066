"""What a killed process leaves is cleaned: its load's private staging folder by the next load of
any process, the Parquet files of its uncommitted commit by maintenance (without waiting for
the time-travel window), never a live writer's files nor an earlier lake's."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pfo_pipeline import lake
from pfo_pipeline.lake.maintenance import maintain
from pfo_pipeline.lake.orphan_files import delete_orphan_files
from pfo_pipeline.lake.scratch_folder import STAGE_DIR_ENV, StageFolderError, stage_root
from pfo_pipeline.ledger.transactions_stage import TransactionStage
from pfo_pipeline.ledger.types import SyncContext
from tests.conftest import open_ledger, query
from tests.ledger.test_incremental_derivations import TENANT

ROOT = Path(__file__).resolve().parents[2]
IBAN = "FR7630004000031234567890143"

STAGING_LOAD = textwrap.dedent(
    f"""
    import sys, time
    from datetime import date, datetime
    from decimal import Decimal
    from pfo_pipeline import lake
    from pfo_pipeline.ledger.transactions_stage import TransactionStage
    from pfo_pipeline.ledger.types import SyncContext
    from tests.ledger.test_incremental_derivations import TENANT, staged_rows

    conn = lake.connect(lake.LakeLocation.in_folder(sys.argv[1]))
    stage = TransactionStage(conn, SyncContext(TENANT, "c", "1", "load_killed"))
    row = {{"id": "txn_1", "account_id": "acc_a", "amount": Decimal("-1.00"),
           "date": date(2026, 3, 10), "description": "VIR {IBAN} JEANNE DUPONT",
           "provider_updated_at": datetime(2026, 3, 12, 8)}}
    stage.add(staged_rows([row]), [], raw_rows=1)
    print(stage.scratch.folder, flush=True)
    time.sleep(600)
    """
)


def start_staging_load(ledger: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", STAGING_LOAD, str(ledger)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    line = process.stdout.readline().strip()
    assert line, "the staging process printed no folder"
    return process, Path(line)


def test_a_killed_load_leaves_a_private_folder_the_next_load_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger"
    open_ledger(ledger).close()
    stage_dir = tmp_path / "stage"
    monkeypatch.setenv(STAGE_DIR_ENV, str(stage_dir))
    env = {**os.environ, STAGE_DIR_ENV: str(stage_dir)}
    killed, killed_folder = start_staging_load(ledger, env)
    alive, alive_folder = start_staging_load(ledger, env)
    try:
        # Private: the root and each load's folder are the user's alone.
        assert stat.S_IMODE(stage_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(killed_folder.stat().st_mode) == 0o700
        staged = b"".join(p.read_bytes() for p in killed_folder.glob("*.parquet"))
        assert IBAN.encode() in staged  # what is at stake: full rows
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed_folder.exists()  # a killed process cannot clean up

        conn = open_ledger(ledger)
        try:
            stage = TransactionStage(conn, SyncContext(TENANT, "c", "1", "load_next"))
            assert not killed_folder.exists()  # the next load removed the dead one's folder
            assert alive_folder.exists()  # a live load's folder is left alone
            stage.close()
            assert not Path(stage.scratch.folder).exists()
        finally:
            conn.close()
    finally:
        for process in (killed, alive):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def test_the_staging_root_is_made_private_and_refused_when_not_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "shared"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    monkeypatch.setenv(STAGE_DIR_ENV, str(root))
    assert stage_root() == root and stat.S_IMODE(root.stat().st_mode) == 0o700
    link = tmp_path / "link"
    link.symlink_to(root)
    monkeypatch.setenv(STAGE_DIR_ENV, str(link))
    with pytest.raises(StageFolderError, match=STAGE_DIR_ENV):
        stage_root()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    monkeypatch.setenv(STAGE_DIR_ENV, str(a_file))
    with pytest.raises(StageFolderError, match="cannot make the staging folder"):
        stage_root()


UNCOMMITTED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pfo_pipeline import lake

    conn = lake.connect(lake.LakeLocation.in_folder(sys.argv[1]))
    conn.execute("BEGIN TRANSACTION")
    # more rows than DuckLake inlines in its catalog: they go to a Parquet file at once
    conn.execute(
        "INSERT INTO ledger.sync_cursors SELECT 'FR7630004000031234567890143', 'c', "
        "'transactions', TIMESTAMP '2026-03-01', 'load_' || i FROM range(5000) t(i)"
    )
    conn.execute("SELECT 1").fetchall()
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # killed inside the commit: the files stay behind
    """
)


def parquet_files(ledger: Path) -> set[Path]:
    return set((ledger / "lake").rglob("*.parquet"))


def test_orphans_of_a_killed_commit_are_deleted_by_maintenance_once_safe(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    conn = open_ledger(ledger)
    try:  # a lake made a day ago (its first migration's time is the catalog's birth)
        conn.execute("UPDATE ledger.schema_migrations SET applied_at = now() - INTERVAL 1 DAY")
    finally:
        conn.close()
    before = parquet_files(ledger)
    out = subprocess.run(
        [sys.executable, "-c", UNCOMMITTED_WRITER, str(ledger)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    orphans = parquet_files(ledger) - before
    assert orphans, "the killed commit left no file (DuckLake wrote nothing before COMMIT?)"
    assert query(ledger, "SELECT count(*) FROM ledger.sync_cursors") == [(0,)]

    conn = open_ledger(ledger)
    try:
        # Fresh files may be a live writer's, not yet committed: kept.
        assert delete_orphan_files(conn).deleted == 0
        assert orphans <= parquet_files(ledger)
        # A load still running since before the files were written holds them too.
        now = datetime.now(UTC) + timedelta(hours=2)
        conn.execute(
            "INSERT INTO ledger.loads (load_id, tenant_id, connection_id, stream, status, "
            "started_at) VALUES ('load_live', 't', 'c', 'transactions', 'running', ?)",
            [datetime.now(UTC) - timedelta(minutes=5)],
        )
        assert delete_orphan_files(conn, now=now).deleted == 0
        conn.execute("UPDATE ledger.loads SET status = 'abandoned' WHERE load_id = 'load_live'")
        # Two hours later, nobody can commit them any more: maintenance deletes them.
        past = time.time() - 2 * 3600
        for path in orphans:
            os.utime(path, (past, past))
        report = maintain(conn)
    finally:
        conn.close()
    assert report.orphan_files_deleted == len(orphans)
    assert not orphans & parquet_files(ledger)
    assert before <= parquet_files(ledger)  # the lake's own files are all there


def test_files_older_than_the_catalog_are_kept_unless_told(tmp_path: Path) -> None:
    """An earlier lake's files under a catalog created after them are not this catalog's
    orphans: maintenance keeps them and says so; `--delete-unknown-files` deletes them."""
    from click.testing import CliRunner

    from pfo_pipeline.cli import main

    ledger = tmp_path / "ledger"
    open_ledger(ledger).close()
    earlier = ledger / "lake" / "ledger" / "bank_transactions" / "ducklake-earlier.parquet"
    earlier.parent.mkdir(parents=True, exist_ok=True)
    earlier.write_bytes(b"PAR1 an earlier lake's rows PAR1")
    long_ago = time.time() - 400 * 86400
    os.utime(earlier, (long_ago, long_ago))
    env = lake.LakeLocation.in_folder(ledger).env()
    kept = CliRunner().invoke(main, ["ledger", "maintain"], env=env)
    assert kept.exit_code == 0, kept.output
    assert earlier.exists() and "kept 1 files older than the catalog" in kept.output
    deleted = CliRunner().invoke(main, ["ledger", "maintain", "--delete-unknown-files"], env=env)
    assert deleted.exit_code == 0, deleted.output
    assert not earlier.exists()
