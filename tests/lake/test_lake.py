"""The ledger as a DuckLake: analysts read while runs write, tenants load side by side in
separate processes, commit conflicts are retried, time travel, the file migration, maintenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pfo_pipeline import lake
from pfo_pipeline.cli import main
from pfo_pipeline.lake import extension_trust, extensions
from pfo_pipeline.lake.extensions import database_with
from pfo_pipeline.lake.migrations import LATEST_VERSION, migrate
from powens_emulator import EmulatorConfig, start_emulator
from tests.analyst import reading_analyst
from tests.conftest import (
    FAMILY,
    SECOND,
    ledger_digests,
    materialize_ledger,
    open_ledger,
    query,
    resources_for,
    write_tenants_file,
)
from tests.ledger.test_incremental_derivations import add_rows
from tests.ledger_expectations import assert_ledger_matches_emulator, ledger_transactions

ROOT = Path(__file__).resolve().parents[2]


def lake_env(ledger: Path) -> dict[str, str]:
    return lake.LakeLocation.in_folder(ledger).env()


def run_pfo(ledger: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), env=lake_env(ledger), input=input)


def test_an_analyst_reads_throughout_a_first_and_an_incremental_sync(
    tmp_path: Path, powens_env
) -> None:
    """Reads in another process never fail, never see part of a load, never go back. (The
    analyst also reads throughout dbt and the overview: tests/e2e/test_overview_pipeline.py.)"""
    ledger = tmp_path / "ledger"
    with start_emulator(EmulatorConfig(seed=21, transactions=3000)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        assert materialize_ledger(tenants, ledger, FAMILY, assets=("bank_accounts",)).success
        with reading_analyst(ledger, tmp_path) as reads:
            assert materialize_ledger(tenants, ledger, FAMILY).success
            changes = emulator.advance(days=2)
            assert sum(v for v in changes.values() if isinstance(v, int)) > 0
            assert materialize_ledger(tenants, ledger, FAMILY).success
    assert reads.attempted >= 5, reads
    assert reads.failed == 0, reads.errors
    assert reads.torn == 0
    assert reads.last_rows == query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0]


SYNC_ONE_TENANT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pfo_pipeline import lake
    from pfo_pipeline.operations.powens_clients import powens_client_for
    from pfo_pipeline.tenancy.config import load_tenants
    from pfo_pipeline.operations.accounts_sync import sync_accounts
    from pfo_pipeline.operations.balances_refresh import refresh_balances
    from pfo_pipeline.operations.sync_context import new_context
    from pfo_pipeline.operations.transactions_sync import sync_transactions

    tenants_file, ledger_path, tenant_id = sys.argv[1:4]
    tenant = load_tenants(Path(tenants_file))[tenant_id]
    binding = tenant.primary_open_banking
    with (
        powens_client_for(tenant) as client,
        lake.open_lake(lake.LakeLocation.in_folder(ledger_path)) as conn,
    ):
        for run in (sync_accounts, sync_transactions, refresh_balances):
            ctx = new_context(tenant.tenant_id, binding.connection_id, binding.powens_user_id)
            run(conn, client, ctx)
    print("DONE", tenant_id, flush=True)
    """
)


def test_two_tenants_sync_at_once_in_two_processes_and_both_land_exactly(
    tmp_path: Path, powens_env
) -> None:
    ledger = tmp_path / "ledger"
    with start_emulator(EmulatorConfig(seed=22, transactions=4000)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        script = tmp_path / "sync_one.py"
        script.write_text(SYNC_ONE_TENANT)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(tenants), str(ledger), tenant],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for tenant in (FAMILY, SECOND)
        ]
        outputs = [p.communicate(timeout=180) for p in procs]
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0 and "DONE" in out, err[-3000:]
        assert_ledger_matches_emulator(ledger, emulator)
        second = ledger_transactions(ledger, SECOND)
        assert second and all(
            row[0] in ("booked", "pending", "cancelled") for row in second.values()
        )
    duplicates = query(
        ledger, "SELECT count(*) - count(DISTINCT id) FROM ledger.bank_transactions"
    )[0][0]
    assert duplicates == 0
    loads = dict(
        query(
            ledger,
            "SELECT tenant_id, count(*) FROM ledger.loads WHERE status = 'succeeded' GROUP BY 1",
        )
    )
    assert loads == {FAMILY: 3, SECOND: 3}


FIRST_ATTACH = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pfo_pipeline import lake
    from pfo_pipeline.lake.migrations import migrate

    folder, ready, go = sys.argv[1:4]
    Path(ready).write_text("")
    while not os.path.exists(go):
        time.sleep(0.001)
    conn = lake.connect(lake.LakeLocation.in_folder(folder))
    migrate(conn)
    print(conn.execute("SELECT count(*) FROM ledger.schema_migrations").fetchall()[0][0])
    """
)


@pytest.mark.scale_out  # a race: four rounds of four processes (~20 s), in CI's scale-out step
def test_processes_creating_one_new_lake_at_once_all_open_it(tmp_path: Path) -> None:
    """Four processes open the same lake that does not exist yet, released at the same instant
    (a scheduler starting several tenants' runs on a fresh machine): each opens it and finds it
    migrated exactly once. Unserialised, rounds failed with SQLite's "database is locked",
    DuckLake commit failures, or a process seeing only some rows of `schema_migrations`."""
    script = tmp_path / "first_attach.py"
    script.write_text(FIRST_ATTACH)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_number in range(4):
        folder, go = tmp_path / f"lake{round_number}", tmp_path / f"go{round_number}"
        ready = [tmp_path / f"ready{round_number}_{i}" for i in range(4)]
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(folder), str(flag), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for flag in ready
        ]
        deadline = time.monotonic() + 120
        while not all(flag.exists() for flag in ready):  # every one imported and waiting
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.01)
        go.write_text("")
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[:4000]
            assert int(out) == LATEST_VERSION
        versions = query(folder, "SELECT version FROM ledger.schema_migrations ORDER BY 1")
        assert [v for (v,) in versions] == list(range(1, LATEST_VERSION + 1))


def test_a_commit_conflict_is_retried_from_a_fresh_snapshot(tmp_path: Path) -> None:
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    mine = lake.connect(location)
    other = lake.connect(location, shared=False)  # another writer, as another process would be
    try:
        migrate(mine)
        mine.execute(
            "INSERT INTO ledger.sync_cursors VALUES ('t', 'c', 'transactions', "
            "TIMESTAMP '2026-01-01 00:00:00', 'l0')"
        )
        attempts: list[int] = []

        def work() -> int:
            attempts.append(1)
            seen = mine.execute("SELECT count(*) FROM ledger.sync_cursors").fetchall()[0][0]
            mine.execute("UPDATE ledger.sync_cursors SET load_id = 'mine'")
            if len(attempts) == 1:  # another writer commits first, on the same row
                other.execute(
                    "UPDATE ledger.sync_cursors SET high_watermark = TIMESTAMP '2026-02-01'"
                )
                other.execute(
                    "INSERT INTO ledger.sync_cursors VALUES ('t2', 'c', 'transactions', "
                    "TIMESTAMP '2026-01-01 00:00:00', 'other')"
                )
            return seen

        seen = lake.run_transaction(mine, work, what="test commit", first_wait_s=0.01)
        assert len(attempts) == 2  # the first commit conflicted, the retry committed
        assert seen == 2  # the retry read the other writer's row: a fresh snapshot
        rows = mine.execute(
            "SELECT tenant_id, high_watermark, load_id FROM ledger.sync_cursors ORDER BY 1"
        ).fetchall()
        assert [r[2] for r in rows] == ["mine", "mine"]
        assert str(rows[0][1]).startswith("2026-02-01")  # the other writer's change survived

        def always_conflicts() -> None:
            mine.execute("UPDATE ledger.sync_cursors SET load_id = 'x'")
            other.execute("UPDATE ledger.sync_cursors SET load_id = 'y'")

        with pytest.raises(lake.LakeCommitConflict, match="gave up after 3 commit conflicts"):
            lake.run_transaction(mine, always_conflicts, what="test", attempts=3, first_wait_s=0.0)
    finally:
        mine.close()
        other.close()


def test_reads_in_one_snapshot_do_not_see_a_commit_made_between_them(tmp_path: Path) -> None:
    """What the checks that compare two reads use (`lake.one_snapshot`)."""
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    reader = lake.connect(location)
    writer = lake.connect(location, shared=False)  # another process's connection
    count = "SELECT count(*) FROM ledger.sync_cursors"
    try:
        with lake.one_snapshot(reader):
            before = reader.execute(count).fetchall()[0][0]
            writer.execute(
                "INSERT INTO ledger.sync_cursors VALUES ('t', 'c', 'transactions', "
                "TIMESTAMP '2026-01-01 00:00:00', 'l0')"
            )
            assert reader.execute(count).fetchall()[0][0] == before == 0
        assert reader.execute(count).fetchall()[0][0] == 1  # the next read sees the commit
    finally:
        reader.close()
        writer.close()


def test_a_transaction_can_rewrite_every_row_it_just_inserted(tmp_path: Path) -> None:
    """The commit inserts a load's new transactions, then marks transfers, twins and overrides
    on them; a load may quarantine a record and resolve it. DuckLake 1.4.4 cannot commit
    a transaction that rewrote every row of a small insert it kept inlined in the catalog (a load
    whose only new rows were the two legs of a transfer failed at every retry): migration 6
    keeps these tables' rows out of the catalog, so such transactions commit."""
    conn = lake.connect(lake.LakeLocation.in_folder(tmp_path / "ledger"))
    try:

        def insert_then_rewrite_all() -> None:
            add_rows(conn, [("leg_out", "acc_a", "-50.00", "EUR", date(2026, 1, 5), None)])
            add_rows(conn, [("leg_in", "acc_b", "50.00", "EUR", date(2026, 1, 5), None)])
            conn.execute(
                "UPDATE ledger.bank_transactions SET standardized_category = 'internal_transfer' "
                "WHERE id IN ('leg_out', 'leg_in')"
            )
            conn.execute(
                "INSERT INTO ledger.quarantine (id, load_id, stream, tenant_id, external_id, "
                "reasons, record, quarantined_at, fault) VALUES ('q1', 'l', 'transactions', "
                "'t1', 'x1', '[]', '{}', now(), 'held_back')"
            )
            conn.execute("UPDATE ledger.quarantine SET resolved_at = now() WHERE id = 'q1'")

        lake.run_transaction(conn, insert_then_rewrite_all, what="test load")
        marked = conn.execute(
            "SELECT count(*) FROM ledger.bank_transactions "
            "WHERE standardized_category = 'internal_transfer'"
        ).fetchall()[0][0]
        resolved = conn.execute(
            "SELECT count(*) FROM ledger.quarantine WHERE resolved_at IS NOT NULL"
        ).fetchall()[0][0]
        assert (marked, resolved) == (2, 1)
    finally:
        conn.close()


def test_time_travel_reads_the_ledger_as_a_load_left_it(tmp_path: Path, powens_env) -> None:
    ledger = tmp_path / "ledger"
    with start_emulator(EmulatorConfig(seed=23, transactions=1500)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        assert materialize_ledger(tenants, ledger, FAMILY).success
        first_load, snapshot = query(
            ledger,
            "SELECT load_id, snapshot_id FROM ledger.loads WHERE stream = 'transactions'",
        )[0]
        assert snapshot is not None
        before = query(ledger, "SELECT count(*), sum(amount) FROM ledger.bank_transactions")[0]
        emulator.advance(days=3)
        assert materialize_ledger(tenants, ledger, FAMILY).success
    after = query(ledger, "SELECT count(*), sum(amount) FROM ledger.bank_transactions")[0]
    assert after != before

    sql = "SELECT count(*) AS n, sum(amount) AS total FROM ledger.bank_transactions"
    result = run_pfo(ledger, "sql", "--csv", "--as-of-load", first_load, sql)
    assert result.exit_code == 0, result.output
    header, row = result.output.strip().splitlines()
    assert header == "n,total" and row == f"{before[0]},{before[1]}"

    now = run_pfo(ledger, "sql", "--csv", sql)
    assert now.output.strip().splitlines()[1] == f"{after[0]},{after[1]}"

    moment = query(
        ledger, f"SELECT snapshot_time FROM lake.snapshots() WHERE snapshot_id = {snapshot}"
    )
    as_of = run_pfo(ledger, "sql", "--csv", "--as-of", str(moment[0][0]), sql)
    assert as_of.exit_code == 0, as_of.output
    shown = as_of.output.splitlines()  # the CSV, and (on stderr) the moment it read
    assert shown[shown.index("n,total") + 1] == f"{before[0]},{before[1]}"
    assert any(line.startswith("as of ") and "Europe/Paris" in line for line in shown)

    unknown = run_pfo(ledger, "sql", "--as-of-load", "load_nope", sql)
    assert unknown.exit_code != 0 and "no load 'load_nope'" in unknown.output

    # The prompt: statements end with ';', read-only, errors reported and the prompt goes on.
    prompt = run_pfo(
        ledger,
        "sql",
        input="SELECT count(*) AS n\nFROM ledger.bank_transactions;\n"
        "DELETE FROM ledger.bank_transactions;\n.quit\n",
    )
    assert prompt.exit_code == 0, prompt.output
    assert str(after[0]) in prompt.output and "read-only" in prompt.output.lower()
    assert query(ledger, "SELECT count(*) FROM ledger.bank_transactions")[0][0] == after[0]


def test_an_old_ledger_file_migrates_into_the_lake_and_a_second_run_copies_nothing(
    tmp_path: Path, powens_env
) -> None:
    source_lake = tmp_path / "source"
    with start_emulator(EmulatorConfig(seed=24, transactions=1200)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        assert materialize_ledger(tenants, source_lake, FAMILY).success
    # A file in the DuckDB-file version's shape: the same tables, without the lake-era columns.
    old_file = tmp_path / "pfo.duckdb"
    conn = open_ledger(source_lake)
    try:
        conn.execute(f"ATTACH '{old_file}' AS old_file")
        conn.execute("CREATE SCHEMA old_file.ledger")
        for table in ("bank_accounts", "account_aliases", "bank_transactions", "account_balances",
                      "loads", "sync_cursors", "category_overrides", "quarantine"):  # fmt: skip
            drop = {
                "loads": "EXCLUDE (upstream_moved, cursor_held, held_back, quarantine_resolved, "
                "snapshot_id)",
                "quarantine": "EXCLUDE (fault, resolved_at, resolved_by_load)",
            }.get(table, "")
            conn.execute(
                f"CREATE TABLE old_file.ledger.{table} AS SELECT * {drop} FROM lake.ledger.{table}"
            )
        conn.execute(
            "INSERT INTO old_file.ledger.quarantine VALUES ('qtn_old', 'load_old', "
            "'transactions', ?, 'conn-powens-primary', '42', '[\"id: missing\"]', '{}', now())",
            [FAMILY],
        )
        conn.execute("DETACH old_file")
    finally:
        conn.close()

    target = tmp_path / "target"
    first = run_pfo(target, "ledger", "migrate", "--from", str(old_file))
    assert first.exit_code == 0, first.output
    assert "bank_transactions:" in first.output and "0 missing" in first.output
    source_digests = ledger_digests(source_lake)
    target_digests = ledger_digests(target)
    for table in ("bank_accounts", "account_aliases", "bank_transactions", "account_balances",
                  "sync_cursors", "category_overrides"):  # fmt: skip
        assert target_digests[table] == source_digests[table], table
    assert query(target, "SELECT fault FROM ledger.quarantine WHERE id = 'qtn_old'") == [
        ("record",)
    ]
    before = ledger_digests(target)
    second = run_pfo(target, "ledger", "migrate", "--from", str(old_file))
    assert second.exit_code == 0, second.output
    assert " 0 copied" in second.output and all(
        " 0 copied" in line for line in second.output.splitlines() if "copied" in line
    )
    assert ledger_digests(target) == before


def test_lake_maintenance_compacts_and_expires_without_changing_content(
    tmp_path: Path, powens_env
) -> None:
    ledger = tmp_path / "ledger"
    with start_emulator(EmulatorConfig(seed=25, transactions=1500)) as emulator:
        tenants = write_tenants_file(tmp_path / "tenants.yaml", emulator.base_url)
        for _ in range(3):
            assert materialize_ledger(tenants, ledger, FAMILY).success
            emulator.advance(days=1)
    before = ledger_digests(ledger)
    from pfo_pipeline.definitions import materializable

    result = dg.materialize(
        materializable(),
        selection=dg.AssetSelection.assets("lake_maintenance"),
        resources=resources_for(ledger),
        run_config={"ops": {"lake_maintenance": {"config": {"time_travel_days": 0}}}},
    )
    assert result.success
    report = result.asset_materializations_for_node("lake_maintenance")[0].metadata
    assert report["snapshots_after"].value < report["snapshots_before"].value
    assert report["data_files_after"].value <= report["data_files_before"].value
    # What it did, from DuckLake: nothing is inlined in the catalog any more (migration 8), and
    # every snapshot but the newest expired (a window of 0 days).
    assert report["inlined_rows_flushed"].value == 0
    assert report["snapshots_expired"].value == (
        report["snapshots_before"].value + 1 - report["snapshots_after"].value
    )  # the merge committed one snapshot more
    assert report["files_deleted"].value >= report["files_merged"].value > 0
    assert 0 < report["merged_into"].value < report["files_merged"].value
    assert report["orphan_files_deleted"].value == 0  # the nightly job cleans orphans too
    assert ledger_digests(ledger) == before
    files_on_disk = sum(1 for p in (ledger / "lake").rglob("*.parquet"))
    live = query(
        ledger,
        "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_data_file WHERE end_snapshot IS NULL",
    )[0][0]
    deletes = query(
        ledger,
        "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_delete_file WHERE end_snapshot IS NULL",
    )[0][0]
    assert files_on_disk == live + deletes  # nothing unreferenced is left on disk


def test_the_lake_cannot_be_written_read_only_and_names_a_missing_lake(tmp_path: Path) -> None:
    missing = run_pfo(tmp_path / "nowhere", "sql", "SELECT 1")
    assert missing.exit_code != 0 and "no ledger yet" in missing.output
    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    with lake.open_lake(location) as conn:
        migrate(conn)
    reader = lake.connect(location, read_only=True)
    try:
        with pytest.raises(duckdb.Error):
            reader.execute("DELETE FROM ledger.loads")
    finally:
        reader.close()
    with pytest.raises(lake.LakeError, match="PFO_LAKE_CATALOG"):
        lake.connect(lake.LakeLocation("mysql:whatever", str(tmp_path)))


def test_extension_signatures_are_checked_once_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB re-reads each ~50 MB extension to check its signature on every LOAD: the first
    database to load a file checks it, later ones (in this process, or in another through the
    stamp in the cache folder) skip the check while the file is unchanged; a file not checked yet
    (the PostgreSQL one here), or changed since its check, is checked."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(extensions, "_VERIFIED_EXTENSIONS", set())

    def checks_signatures(conn: duckdb.DuckDBPyConnection) -> bool:
        setting = "SELECT current_setting('allow_unsigned_extensions')"
        checked = not conn.execute(setting).fetchall()[0][0]
        conn.close()
        return checked

    location = lake.LakeLocation.in_folder(tmp_path / "ledger")
    assert checks_signatures(lake.connect(location, shared=False))
    second = lake.connect(location, read_only=True, shared=False)
    assert second.execute("SELECT count(*) FROM ledger.schema_migrations").fetchall()[0][0]
    assert not checks_signatures(second)
    monkeypatch.setattr(extensions, "_VERIFIED_EXTENSIONS", set())  # as a new process starts
    assert not checks_signatures(database_with("ducklake", "sqlite"))
    assert checks_signatures(database_with("ducklake", "postgres"))

    stamps = json.loads(extension_trust.stamp_file().read_text())
    ducklake_file = next(path for path in stamps if path.endswith("/ducklake.duckdb_extension"))
    stamps[ducklake_file][-1] += 1  # the file's change time moved: written since its check
    extension_trust.stamp_file().write_text(json.dumps(stamps))
    monkeypatch.setattr(extensions, "_VERIFIED_EXTENSIONS", set())
    assert checks_signatures(database_with("ducklake", "sqlite"))


def test_reading_the_lakes_files_leaves_none_of_them_in_duckdbs_memory(tmp_path: Path) -> None:
    """A full load's derivations scan the whole history: DuckDB must not keep the Parquet it
    read (its external file cache would, up to the memory limit), or memory follows history."""
    path = tmp_path / "history.parquet"
    pq.write_table(pa.table({"n": list(range(500_000))}), path)
    conn = lake.connect(lake.LakeLocation.in_folder(tmp_path / "ledger"), shared=False)
    try:
        for _ in range(3):
            conn.execute(f"SELECT sum(n) FROM read_parquet('{path}')").fetchall()
        cached = conn.execute(
            "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
            "WHERE tag = 'EXTERNAL_FILE_CACHE'"
        ).fetchall()[0][0]
    finally:
        conn.close()
    assert cached == 0


def test_a_full_loads_writer_holds_a_row_group_and_a_files_footer_at_most(tmp_path: Path) -> None:
    """A Parquet writer keeps a row group per thread and every row group's footer statistics
    until it closes its file: the lake's migrations set small row groups (migration 3) and files
    of 64 MB (migration 7; at DuckLake's default of 512 MB a full load wrote the whole history as
    one file, and its insert's memory grew with the history)."""
    conn = lake.connect(lake.LakeLocation.in_folder(tmp_path / "ledger"))
    try:
        migrate(conn)
        options = dict(
            conn.execute(
                "SELECT option_name, value FROM lake.options() WHERE scope = 'GLOBAL'"
            ).fetchall()
        )
    finally:
        conn.close()
    assert options["parquet_row_group_size"] == "20480"
    assert options["target_file_size"] == str(64 * 1000**2)
