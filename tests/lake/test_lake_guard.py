"""The lake never restarts silently, and errors a retry cannot fix are not retried.

A deleted or zero-byte catalog beside an earlier lake's files stops every writer (a sync, the
demo, maintenance) with both locations and how to recover; nothing is written and no file is
lost. A new lake is created only where nothing was, and says so. A missing or truncated data
file fails the sync on its first attempt, the file named with what to do.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from pfo_pipeline import lake
from pfo_pipeline.cli import main
from pfo_pipeline.lake.faults import lake_fault
from powens_emulator import EmulatorConfig, start_emulator
from tests.conftest import FAMILY, materialize_ledger, open_ledger, query, write_tenants_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory):
    """An emulator, a tenants file and a synced ledger, shared by the tests that copy it."""
    from tests.conftest import synced_family

    with synced_family(tmp_path_factory.mktemp("guard"), seed=31, transactions=400) as synced:
        yield synced


def copy_ledger(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def files_of(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = result.get_step_failure_events()
    data = failure.step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.message


def retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(
        1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    )


@pytest.mark.parametrize("damage", ["deleted", "zero-byte"])
def test_a_lost_catalog_stops_every_writer_and_keeps_every_file(
    synced, tmp_path: Path, damage: str, powens_env
) -> None:
    _, tenants, source = synced
    ledger = copy_ledger(source, tmp_path / "ledger")
    catalog = ledger / "pfo_catalog.sqlite"
    if damage == "deleted":
        for leftover in ledger.glob("pfo_catalog.sqlite*"):
            leftover.unlink()
    else:
        catalog.write_bytes(b"")
    data_files = files_of(ledger / "lake")
    assert data_files

    result = materialize_ledger(tenants, ledger, FAMILY, raise_on_error=False)
    assert not result.success
    message = step_failure(result)
    first_line = message.splitlines()[0]
    assert str(catalog) in first_line and str(ledger / "lake") in first_line, message
    assert "restore the catalog" in first_line and "move" in first_line
    assert retries(result) == 0

    env = lake.LakeLocation.in_folder(ledger).env()
    maintain = CliRunner().invoke(main, ["ledger", "maintain"], env=env)
    assert maintain.exit_code != 0 and "restore the catalog" in maintain.output
    read = CliRunner().invoke(main, ["sql", "SELECT 1"], env=env)
    assert read.exit_code != 0 and "restore the catalog" in read.output

    demo = CliRunner().invoke(main, ["demo", "--port", "0", "--transactions", "50"], env=env)
    assert demo.exit_code != 0 and "restore the catalog" in demo.output, demo.output

    assert files_of(ledger / "lake") == data_files  # nothing deleted, nothing added
    assert catalog.exists() == (damage == "zero-byte")
    if catalog.exists():
        assert catalog.stat().st_size == 0


def test_a_new_lake_is_created_only_where_nothing_was_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    with caplog.at_level(logging.INFO, logger="pfo_pipeline.lake"):
        lake.connect(location, shared=False).close()
        created = [r.getMessage() for r in caplog.records if "new, empty lake" in r.getMessage()]
        lake.connect(location, shared=False).close()
        again = [r.getMessage() for r in caplog.records if "new, empty lake" in r.getMessage()]
    assert len(created) == 1 and str(tmp_path / "ledger" / "lake") in created[0]
    assert again == created  # an existing lake is opened, not announced again
    # From its first moment the lake has a file in its data path: losing the catalog shows.
    assert list((tmp_path / "ledger" / "lake").rglob("*.parquet"))

    # A data path holding anything at all is not a place for a new lake.
    other = lake.LakeLocation.in_folder(tmp_path / "other")
    (tmp_path / "other" / "lake").mkdir(parents=True)
    (tmp_path / "other" / "lake" / "notes.txt").write_text("someone's files")
    with pytest.raises(lake.LakeMissing, match="does not exist"):
        lake.connect(other, shared=False)
    assert not (tmp_path / "other" / "pfo_catalog.sqlite").exists()


def test_a_sqlite_file_that_is_not_a_lake_is_refused(tmp_path: Path) -> None:
    import sqlite3

    folder = tmp_path / "ledger"
    folder.mkdir()
    with sqlite3.connect(folder / "pfo_catalog.sqlite") as db:
        db.execute("CREATE TABLE mine (x)")
    (folder / "lake").mkdir()
    (folder / "lake" / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(lake.LakeMissing, match="without DuckLake tables"):
        lake.connect(lake.LakeLocation.in_folder(folder), shared=False)


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_or_truncated_data_file_fails_at_once_naming_the_file(
    tmp_path: Path, damage: str, powens_env
) -> None:
    with start_emulator(EmulatorConfig(seed=32, transactions=400)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        ledger = tmp_path / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY).success
        _damage_a_transactions_file(ledger, damage)
        result = materialize_ledger(
            tenants, ledger, FAMILY, assets=("bank_transactions",), raise_on_error=False
        )
    assert not result.success
    first_line = step_failure(result).splitlines()[0]
    assert "restore it" in first_line and "lake/ledger/bank_transactions/" in first_line, first_line
    assert retries(result) == 0  # the policy allows 4: none was spent on this


def _damage_a_transactions_file(ledger: Path, damage: str) -> None:
    [(path,)] = query(
        ledger,
        "SELECT f.path FROM __ducklake_metadata_lake.ducklake_data_file f "
        "JOIN __ducklake_metadata_lake.ducklake_table t USING (table_id) "
        "WHERE t.table_name = 'bank_transactions' AND f.end_snapshot IS NULL "
        "AND t.end_snapshot IS NULL LIMIT 1",
    )
    victim = next((ledger / "lake").rglob(Path(path).name))
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:64])


EFBIG_WRITER = textwrap.dedent(
    """
    import resource, signal, sys
    from pfo_pipeline import lake
    from pfo_pipeline.lake.faults import lake_fault

    conn = lake.connect(lake.LakeLocation.in_folder(sys.argv[1]), shared=False)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        lake.run_transaction(conn, lambda: conn.execute(
            "INSERT INTO ledger.sync_cursors SELECT 't' || i, 'c', 's', now()::TIMESTAMP, 'l' "
            "FROM range(200000) t(i)"), what="a big insert")
    except Exception as exc:
        fault = lake_fault(exc, "the test lake")
        print("FAULT" if fault else "NOT A FAULT", fault or repr(exc))
    """
)


def test_a_file_size_limit_is_a_fault_not_a_conflict(tmp_path: Path) -> None:
    """A real EFBIG (the process's file-size limit) while writing the lake."""
    folder = tmp_path / "ledger"
    lake.connect(lake.LakeLocation.in_folder(folder), shared=False).close()
    out = subprocess.run(
        [sys.executable, "-c", EFBIG_WRITER, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ},
    )
    assert out.stdout.startswith("FAULT"), out.stdout + out.stderr
    assert "file-size limit" in out.stdout or "cannot be read or written" in out.stdout


def test_what_is_a_fault_and_what_is_retried(tmp_path: Path) -> None:
    conn = open_ledger(tmp_path / "ledger")
    try:
        with pytest.raises(duckdb.CatalogException) as missing_table:
            conn.execute("SELECT * FROM ledger.no_such_table")
    finally:
        conn.close()
    fault = lake_fault(missing_table.value)
    assert fault and str(fault).startswith("table no_such_table is not in the lake's catalog")
    full = lake_fault(OSError(errno.ENOSPC, "No space left on device", "/stage/batch_1.parquet"))
    assert full and str(full).startswith("writing /stage/batch_1.parquet failed, the disk is full")
    denied = lake_fault(PermissionError(errno.EACCES, "Permission denied", "/lake/x.parquet"))
    assert denied and "read and write access" in str(denied)
    assert lake_fault(duckdb.TransactionException("Transaction conflict: retry")) is None
    assert lake_fault(duckdb.IOException("database is locked")) is None
    assert lake_fault(ValueError("a bug")) is None
