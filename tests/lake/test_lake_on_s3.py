"""The lake's data on S3 (`PFO_LAKE_DATA_PATH=s3://bucket/prefix/`), against a real S3 API:
SeaweedFS on loopback (`pfo_pipeline/local_s3.py`), reached with only the four standard AWS
variables.
What the lake does to its files (write, guard, maintain, forget, time travel, `pfo sql`,
`pfo ledger migrate`) happens in the bucket, and the credentials stay out of every log, the
catalog and the disk. (The whole pipeline on S3, Dagster and dbt included, is in
tests/e2e/test_pipeline_on_s3.py and the scale-out proof; the settings alone, without a server,
tests/lake/test_object_store_settings.py.) About 15 s with the server's start: with the
past-one-machine proofs, `pytest -m scale_out`, out of the 4-minute default suite."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pfo_pipeline import lake
from pfo_pipeline.cli import main
from pfo_pipeline.knowledge.retention import FORGOTTEN, sweep_expired
from pfo_pipeline.lake.faults import lake_fault
from pfo_pipeline.lake.orphan_files import delete_orphan_files
from pfo_pipeline.local_s3 import S3Store

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.scale_out
SECRET_TEXT = "the family's private overview text"


def s3_lake(tmp_path: Path, store: S3Store, name: str = "lake") -> lake.LakeLocation:
    return lake.LakeLocation(f"sqlite:{tmp_path / f'{name}.sqlite'}", store.new_prefix(name))


def objects(store: S3Store, location: lake.LakeLocation) -> list[str]:
    return store.keys(location.data_path)


def insert_overview(conn: duckdb.DuckDBPyConnection, entry_id: str, period_end: date) -> None:
    def work() -> None:
        conn.execute(
            "INSERT INTO knowledge.financial_overview VALUES (?, 't', 'week', ?, ?, now(), ?, "
            "'h', ?, '{\"note\": \"private\"}')",
            [entry_id, period_end - timedelta(days=6), period_end,
             period_end + timedelta(days=180), f"{SECRET_TEXT} {entry_id}"],
        )  # fmt: skip
        conn.execute(
            "INSERT INTO knowledge.financial_overview_chunks VALUES (?, ?, 't', 0, ?, 5, ?)",
            [f"{entry_id}-0", entry_id, f"{SECRET_TEXT} chunk", period_end + timedelta(days=180)],
        )

    lake.run_transaction(conn, work, what="test overview")


def test_the_lake_on_s3_writes_only_to_the_bucket_and_keeps_the_credentials_nowhere(
    tmp_path: Path,
    s3_env: S3Store,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    location = s3_lake(tmp_path, s3_env)
    conn = lake.connect(location, shared=False)  # a new lake: migrated, its first file written
    try:
        insert_overview(conn, "entry-1", date(2026, 1, 4))
        assert conn.execute("SELECT count(*) FROM knowledge.financial_overview").fetchall() == [
            (1,)
        ]
        secrets = conn.execute(
            "SELECT name, type, persistent, storage, scope FROM duckdb_secrets()"
        ).fetchall()
        assert secrets == [("pfo_lake_s3", "s3", False, "memory", [f"s3://{s3_env.bucket}/"])]
        stored = conn.execute(
            f"SELECT value FROM __ducklake_metadata_{lake.LAKE}.ducklake_metadata "
            "WHERE key = 'data_path'"
        ).fetchall()
        assert stored == [(location.data_path,)]
    finally:
        conn.close()

    keys = objects(s3_env, location)
    assert any("/knowledge/financial_overview/" in k and k.endswith(".parquet") for k in keys)
    # Nothing of the lake's data on the local disk: the catalog (and its lock and WAL) only.
    local = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert not [n for n in local if n.endswith(".parquet")], local
    assert sorted(p.name for p in home.rglob("*")) == []  # no persisted secret in ~/.duckdb
    # The credentials reached no log, no output, no file of the catalog.
    out, err = capfd.readouterr()
    shown = caplog.text + out + err
    catalog_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("lake.sqlite*"))
    for value in (s3_env.secret_key, s3_env.access_key):
        assert value not in shown
        assert value.encode() not in catalog_bytes


def test_a_lost_catalog_beside_a_bucket_of_files_stops_writers(
    tmp_path: Path, s3_env: S3Store
) -> None:
    location = s3_lake(tmp_path, s3_env)
    lake.connect(location, shared=False).close()
    before = objects(s3_env, location)
    assert before
    for path in tmp_path.glob("lake.sqlite*"):
        path.unlink()
    with pytest.raises(lake.LakeMissing, match="holds an earlier lake's files") as refused:
        lake.connect(location, shared=False)
    assert location.data_path in str(refused.value) and "s3://" in str(refused.value)
    assert objects(s3_env, location) == before
    # An empty prefix is where a new lake may start.
    fresh = s3_lake(tmp_path, s3_env, "fresh")
    lake.connect(fresh, shared=False).close()
    lake.connect(fresh, shared=False).close()


def test_maintenance_deletes_orphans_and_replaced_files_from_the_bucket(
    tmp_path: Path, s3_env: S3Store
) -> None:
    location = s3_lake(tmp_path, s3_env)
    conn = lake.connect(location, shared=False)
    try:
        for day in range(1, 5):  # small files to merge
            insert_overview(conn, f"entry-{day}", date(2026, 1, day))
        table = location.data_path + "knowledge/financial_overview/"
        orphan = table + "ducklake-orphan-of-a-killed-commit.parquet"
        fs = s3_env.filesystem()
        with fs.open_output_stream(orphan.removeprefix("s3://")) as out:
            out.write(b"PAR1 rows of a commit that never happened PAR1")
        lake.run_transaction(
            conn,
            lambda: conn.execute(
                "UPDATE ledger.schema_migrations SET applied_at = now() - INTERVAL 1 DAY"
            ),
            what="an older catalog",
        )
        # Fresh: a live writer's file, kept.
        assert delete_orphan_files(conn).deleted == 0
        assert orphan.removeprefix("s3://") in objects(s3_env, location)
        later = datetime.now(UTC) + timedelta(hours=2)
        assert delete_orphan_files(conn, now=later).deleted == 1
        assert orphan.removeprefix("s3://") not in objects(s3_env, location)

        from pfo_pipeline.lake.maintenance import maintain

        files_before = len(objects(s3_env, location))
        report = maintain(conn, window_days=0)
        assert report.files_merged >= 4 and report.files_deleted >= 4, report
        assert len(objects(s3_env, location)) < files_before
        assert conn.execute("SELECT count(*) FROM knowledge.financial_overview").fetchall() == [
            (4,)
        ]
    finally:
        conn.close()


def test_files_in_the_bucket_older_than_the_catalog_are_kept_unless_told(
    tmp_path: Path, s3_env: S3Store
) -> None:
    location = s3_lake(tmp_path, s3_env)
    conn = lake.connect(location, shared=False)
    try:
        earlier = location.data_path + "ledger/bank_transactions/ducklake-earlier.parquet"
        with s3_env.filesystem().open_output_stream(earlier.removeprefix("s3://")) as out:
            out.write(b"PAR1 an earlier lake's rows PAR1")
        # The catalog was made after that object (its Last-Modified cannot be set back).
        lake.run_transaction(
            conn,
            lambda: conn.execute(
                "UPDATE ledger.schema_migrations SET applied_at = now() + INTERVAL 1 DAY"
            ),
            what="a younger catalog",
        )
        later = datetime.now(UTC) + timedelta(days=2)
        kept = delete_orphan_files(conn, now=later)
        assert (kept.deleted, kept.kept_unknown) == (0, 1)
        assert earlier.removeprefix("s3://") in objects(s3_env, location)
        assert delete_orphan_files(conn, now=later, delete_unknown=True).deleted == 1
        assert earlier.removeprefix("s3://") not in objects(s3_env, location)
    finally:
        conn.close()


def stored_overview_texts(store: S3Store, location: lake.LakeLocation) -> set[tuple[str, str]]:
    """(entry_id, markdown) of every row in every overview file of the bucket, any version."""
    fs, rows = store.filesystem(), set()
    for key in objects(store, location):
        if "/knowledge/financial_overview/" in key and key.endswith(".parquet"):
            table = pq.read_table(key, filesystem=fs)
            if "markdown" in table.column_names:
                rows |= set(
                    zip(table["entry_id"].to_pylist(), table["markdown"].to_pylist(), strict=True)
                )
    return rows


def test_retention_forgets_text_in_every_file_of_the_bucket(
    tmp_path: Path, s3_env: S3Store
) -> None:
    location = s3_lake(tmp_path, s3_env)
    conn = lake.connect(location, shared=False)
    try:
        insert_overview(conn, "entry-old", date(2026, 1, 4))
        insert_overview(conn, "entry-new", date(2026, 6, 28))
        before_sweep = lake.last_snapshot(conn)
        assert ("entry-old", f"{SECRET_TEXT} entry-old") in stored_overview_texts(s3_env, location)
        report = sweep_expired(conn, date(2026, 7, 10), 180)
        assert report.entry_ids == ("entry-old",) and report.history_files_rewritten >= 2
    finally:
        conn.close()
    stored = stored_overview_texts(s3_env, location)
    assert stored == {
        ("entry-old", FORGOTTEN["markdown"]),
        ("entry-new", f"{SECRET_TEXT} entry-new"),
    }
    # Time travel before the sweep shows the entry existed, not what it said.
    then = lake.connect(location, snapshot_version=before_sweep)
    try:
        rows = then.execute(
            "SELECT entry_id, markdown FROM knowledge.financial_overview ORDER BY entry_id"
        ).fetchall()
    finally:
        then.close()
    assert rows == [("entry-new", f"{SECRET_TEXT} entry-new"), ("entry-old", FORGOTTEN["markdown"])]


def test_pfo_sql_reads_the_bucket_as_of_a_time_and_nothing_outside_it(
    tmp_path: Path, s3_env: S3Store
) -> None:
    location = s3_lake(tmp_path, s3_env)
    conn = lake.connect(location, shared=False)
    try:
        insert_overview(conn, "entry-1", date(2026, 1, 4))
        time.sleep(0.2)
        between = datetime.now(UTC)
        time.sleep(0.2)
        insert_overview(conn, "entry-2", date(2026, 1, 11))
        conn.execute(f"COPY (SELECT 42 AS x) TO 's3://{s3_env.bucket}/elsewhere/x.parquet'")
    finally:
        conn.close()
    env = {**location.resolved().env(), **s3_env.env()}
    runner = CliRunner()
    now = runner.invoke(
        main, ["sql", "--csv", "SELECT entry_id FROM knowledge.financial_overview ORDER BY 1"],
        env=env,
    )  # fmt: skip
    assert now.exit_code == 0, now.output
    assert now.stdout.splitlines() == ["entry_id", "entry-1", "entry-2"]
    then = runner.invoke(
        main,
        ["sql", "--csv", "--as-of", between.isoformat(),
         "SELECT entry_id FROM knowledge.financial_overview ORDER BY 1"],
        env=env,
    )  # fmt: skip
    assert then.exit_code == 0, then.output
    assert then.stdout.splitlines() == ["entry_id", "entry-1"]
    outside = runner.invoke(
        main, ["sql", f"SELECT * FROM 's3://{s3_env.bucket}/elsewhere/x.parquet'"], env=env
    )
    assert outside.exit_code != 0 and "disabled by configuration" in outside.output


def test_pfo_ledger_migrate_copies_a_file_ledger_into_a_lake_on_s3(
    tmp_path: Path, s3_env: S3Store
) -> None:
    old_file = tmp_path / "pfo.duckdb"
    overrides = pa.table(
        {
            "tenant_id": ["t"] * 3,
            "transaction_id": ["tx1", "tx2", "tx3"],
            "category": ["groceries", "transport", "leisure"],
            "created_at": [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)],
        }
    )
    file_db = duckdb.connect(str(old_file))
    try:
        file_db.register("overrides", overrides)
        file_db.execute("CREATE SCHEMA ledger")
        file_db.execute("CREATE TABLE ledger.category_overrides AS SELECT * FROM overrides")
    finally:
        file_db.close()
    location = s3_lake(tmp_path, s3_env)
    env = {**location.resolved().env(), **s3_env.env()}
    first = CliRunner().invoke(main, ["ledger", "migrate", "--from", str(old_file)], env=env)
    assert first.exit_code == 0, first.output
    assert "ledger.category_overrides: 3 rows in the file, 3 copied, 0 missing" in first.output
    second = CliRunner().invoke(main, ["ledger", "migrate", "--from", str(old_file)], env=env)
    assert "3 rows in the file, 0 copied, 0 missing" in second.output
    assert any("/ledger/category_overrides/" in k for k in objects(s3_env, location))
    assert not list(tmp_path.rglob("*.parquet"))  # the data went to the bucket only
    conn = lake.connect(location, read_only=True, shared=False)
    try:
        assert conn.execute(
            "SELECT transaction_id, category FROM ledger.category_overrides ORDER BY 1"
        ).fetchall() == [("tx1", "groceries"), ("tx2", "transport"), ("tx3", "leisure")]
    finally:
        conn.close()


def test_refused_credentials_and_a_lost_object_are_faults_naming_the_object(
    tmp_path: Path, s3_env: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = s3_lake(tmp_path, s3_env)
    conn = lake.connect(location, shared=False)
    try:
        insert_overview(conn, "entry-1", date(2026, 1, 4))
    finally:
        conn.close()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-value")
    conn = lake.connect(location, shared=False)  # the catalog opens; the bucket refuses reads
    try:
        with pytest.raises(duckdb.Error) as refused:
            conn.execute("SELECT * FROM knowledge.financial_overview").fetchall()
    finally:
        conn.close()
    fault = lake_fault(refused.value)
    assert fault is not None, refused.value
    assert "the object store refused the lake's credentials for http" in str(fault)
    assert "/knowledge/financial_overview/ducklake-" in str(fault)
    assert "AWS_SECRET_ACCESS_KEY" in str(fault) and "not-the-secret-value" not in str(fault)
    with pytest.raises(lake.LakeError, match="cannot list the lake's data path s3://") as listing:
        lake.connect(s3_lake(tmp_path, s3_env, "new"), shared=False)
    assert "not-the-secret-value" not in str(listing.value)

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.secret_key)
    for key in objects(s3_env, location):
        if "/knowledge/financial_overview/" in key:
            s3_env.filesystem().delete_file(key)
    conn = lake.connect(location, shared=False)
    try:
        with pytest.raises(duckdb.Error) as lost:
            conn.execute("SELECT * FROM knowledge.financial_overview").fetchall()
    finally:
        conn.close()
    assert "is missing from the bucket" in str(lake_fault(lost.value))
