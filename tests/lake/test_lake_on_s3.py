"""The lake's data on S3 (`PFO_LAKE_DATA_PATH=s3://bucket/prefix/`), against a real S3 API:
SeaweedFS on loopback (`pfo_pipeline/local_s3.py`), reached with only the four standard AWS variables.
What the lake does to its files (write, guard, maintain, forget, time travel, `pfo sql`,
`pfo ledger migrate`) happens in the bucket, and the credentials stay out of every log, the
catalog and the disk. (The whole pipeline on S3, Dagster and dbt included, is in
tests/e2e/test_pipeline_on_s3.py and the scale-out proof.)"""

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
from pfo_pipeline.lake.extensions import database_with
from pfo_pipeline.lake.object_store import S3Settings, add_secret
from pfo_pipeline.lake.orphan_files import delete_orphan_files
from pfo_pipeline.local_s3 import S3Store

ROOT = Path(__file__).resolve().parents[2]
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


# -- settings: from the AWS variables only, nothing shown ------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:8333", ("127.0.0.1:8333", False, "path")),
        ("https://minio.example.com", ("minio.example.com", True, "path")),
        ("https://s3.example.com:9000/", ("s3.example.com:9000", True, "path")),
        (None, ("", True, "vhost")),  # AWS itself
    ],
)
def test_s3_settings_come_from_the_standard_aws_variables(
    monkeypatch: pytest.MonkeyPatch, endpoint: str | None, expected: tuple
) -> None:
    for name in ("AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",
                 "AWS_ENDPOINT_URL", "PFO_S3_URL_STYLE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalr-very-secret")
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    settings = S3Settings.from_env("s3://bucket/lake/")
    assert (settings.endpoint, settings.use_ssl, settings.url_style) == expected
    assert settings.region == "us-east-1" and settings.session_token == ""
    assert "wJalr" not in repr(settings)

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-secret")
    monkeypatch.setenv("PFO_S3_URL_STYLE", "vhost" if endpoint else "path")
    overridden = S3Settings.from_env("s3://bucket/lake/")
    assert overridden.region == "eu-west-3"
    assert overridden.url_style == ("vhost" if endpoint else "path")
    assert overridden.session_token == "session-token-secret"
    assert "session-token-secret" not in repr(overridden) and "wJalr" not in repr(overridden)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # wins over AWS_DEFAULT_REGION
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://10.1.2.3:9000")  # the S3-only one wins
    last = S3Settings.from_env("s3://bucket/lake/")
    assert (last.region, last.endpoint, last.use_ssl) == ("eu-central-1", "10.1.2.3:9000", False)


def test_missing_or_malformed_s3_settings_are_named_without_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL_S3", "PFO_S3_URL_STYLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalr-very-secret")
    with pytest.raises(lake.LakeError, match="AWS_ACCESS_KEY_ID is not set") as missing:
        S3Settings.from_env("s3://bucket/lake/")
    assert "s3://bucket/lake/" in str(missing.value) and "wJalr" not in str(missing.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:8333")
    with pytest.raises(lake.LakeError, match=r"AWS_ENDPOINT_URL: '127\.0\.0\.1:8333'.*scheme"):
        S3Settings.from_env("s3://bucket/lake/")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://user:pw@127.0.0.1:8333/x")
    with pytest.raises(lake.LakeError, match="only scheme://host") as extra:
        S3Settings.from_env("s3://bucket/lake/")
    assert "pw" not in str(extra.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.setenv("PFO_S3_URL_STYLE", "virtual")
    with pytest.raises(lake.LakeError, match="PFO_S3_URL_STYLE: 'virtual'"):
        S3Settings.from_env("s3://bucket/lake/")
    with pytest.raises(lake.LakeError, match="names no bucket"):
        lake.LakeLocation("sqlite:c.sqlite", "s3:///lake/").resolved()
    with pytest.raises(lake.LakeError, match="neither a local folder nor an S3 location"):
        lake.LakeLocation("sqlite:c.sqlite", "gs://bucket/lake/").resolved()
    assert lake.LakeLocation("sqlite:c", "s3://b/p").resolved().data_path == "s3://b/p/"


# -- the lake on S3 --------------------------------------------------------------------------


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


def test_a_bad_secret_is_refused_without_quoting_it(
    s3_env: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "it's-a-secret')) ; DROP")
    conn = database_with("httpfs")
    try:
        add_secret(conn, "s3://b/lake/")  # quoted: the statement stays whole
        assert conn.execute("SELECT count(*) FROM duckdb_secrets()").fetchall() == [(1,)]
    finally:
        conn.close()
    broken = duckdb.connect()  # httpfs not loaded and not loadable: the error names no value
    try:
        broken.execute("SET autoinstall_known_extensions = false")
        broken.execute("SET autoload_known_extensions = false")
        with pytest.raises(lake.LakeError, match="cannot give DuckDB the S3 credentials") as exc:
            add_secret(broken, "s3://b/lake/")
        assert "it's-a-secret" not in str(exc.value)
        assert exc.value.__cause__ is None and exc.value.__suppress_context__
    finally:
        broken.close()


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


def test_dbt_gets_the_same_s3_settings_with_the_credentials_under_its_secret_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dbt's profile makes its S3 secret from these: the same endpoint, TLS, addressing and
    bucket scope as the pipeline's own, the credentials under `DBT_ENV_SECRET_` (dbt scrubs
    those values from its logs); a local lake passes none."""
    from pfo_pipeline.defs.analytics.project import dbt_variables

    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "PFO_S3_URL_STYLE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalr-very-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    variables = dbt_variables(lake.LakeLocation("sqlite:c.sqlite", "s3://pfo-lake/data"))
    assert {k: v for k, v in variables.items() if "S3" in k or k.startswith("DBT_")} == {
        "DBT_ENV_SECRET_AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "DBT_ENV_SECRET_AWS_SECRET_ACCESS_KEY": "wJalr-very-secret",
        "DBT_ENV_SECRET_AWS_SESSION_TOKEN": "",
        "PFO_DBT_S3_REGION": "us-east-1",
        "PFO_DBT_S3_ENDPOINT": "127.0.0.1:8333",
        "PFO_DBT_S3_USE_SSL": "false",
        "PFO_DBT_S3_URL_STYLE": "path",
        "PFO_DBT_S3_SCOPE": "s3://pfo-lake/",
    }
    assert variables["PFO_LAKE_DATA_PATH"] == "s3://pfo-lake/data/"
    local = dbt_variables(lake.LakeLocation("sqlite:c.sqlite", "data/lake/"))
    assert not [k for k in local if "S3" in k or k.startswith("DBT_ENV_SECRET_")]
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text()
    for name in variables:
        if "S3" in name or name.startswith("DBT_ENV_SECRET_"):
            assert f"env_var('{name}'" in profile, name
