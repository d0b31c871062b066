"""The whole pipeline on a lake whose data is in S3 (SeaweedFS on loopback) and whose catalog is
SQLite: the ledger sync, the dbt build (dbt-duckdb with the same S3 secret), the financial
overview, the retention sweep and lake maintenance, as real Dagster materialisations; then
retention forgetting a real overview in the bucket and `pfo sql --as-of-load` on it. The
credentials reach no event log and no dbt artefact. (With the past-one-machine proofs,
`pytest -m scale_out`; the lake's own operations on S3 are in tests/lake/test_lake_on_s3.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pfo_pipeline import lake
from pfo_pipeline.cli import main
from pfo_pipeline.definitions import materializable
from pfo_pipeline.defs.analytics.project import dbt_project
from pfo_pipeline.knowledge.retention import FORGOTTEN, sweep_expired
from pfo_pipeline.local_s3 import S3Store
from powens_emulator import EmulatorConfig, start_emulator
from tests.conftest import (
    FAMILY,
    LEDGER_ASSETS,
    demo_credentials,
    resources_for,
    using_tenants_file,
    write_tenants_file,
)

pytestmark = pytest.mark.scale_out


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, s3_store: S3Store) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("s3-pipeline")
    env = pytest.MonkeyPatch()
    for name in ("AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_S3",
                 "PFO_S3_URL_STYLE"):  # fmt: skip
        env.delenv(name, raising=False)
    for name, value in s3_store.env().items():
        env.setenv(name, value)
    location = lake.LakeLocation(f"sqlite:{tmp / 'catalog.sqlite'}", s3_store.new_prefix("pipe"))
    (tmp / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp / "dagster_home"))
    runs: dict[str, dg.ExecuteInProcessResult] = {}
    try:
        with (
            demo_credentials(),
            start_emulator(EmulatorConfig(seed=33, transactions=900)) as emulator,
            using_tenants_file(write_tenants_file(tmp / "tenants.yaml", emulator.base_url)),
        ):
            resources = resources_for(location)  # type: ignore[arg-type]

            def run(name: str, selection: dg.AssetSelection, **kwargs: object) -> None:
                runs[name] = dg.materialize(
                    materializable(),
                    selection=selection,
                    resources=resources,
                    instance=instance,
                    **kwargs,  # type: ignore[arg-type]
                )

            run("ledger", dg.AssetSelection.assets(*LEDGER_ASSETS), partition_key=FAMILY)
            run("dbt", dg.AssetSelection.groups("analytics", "insights"))
            day = emulator.state.now.date()
            key = dg.MultiPartitionKey({"tenant": FAMILY, "day": day.isoformat()})
            run("overview", dg.AssetSelection.assets("financial_overview"), partition_key=key)
            run("retention", dg.AssetSelection.assets("knowledge_retention_sweep"))
            run("maintenance", dg.AssetSelection.assets("lake_maintenance"))
        yield {"location": location, "runs": runs, "instance": instance, "day": day, "tmp": tmp}
    finally:
        instance.dispose()
        env.undo()


def test_every_step_of_the_pipeline_runs_on_the_s3_lake(pipeline: dict, s3_store: S3Store) -> None:
    assert {name: r.success for name, r in pipeline["runs"].items()} == dict.fromkeys(
        pipeline["runs"], True
    )
    location = pipeline["location"]
    conn = lake.connect(location, read_only=True, shared=False)
    try:
        assert (
            conn.execute(
                "SELECT count(*) FROM ledger.bank_transactions WHERE tenant_id = ?", [FAMILY]
            ).fetchall()[0][0]
            > 0
        )
        assert conn.execute("SELECT count(*) FROM analytics.fct_daily_cashflow").fetchall()[0][0]
        periods = conn.execute(
            "SELECT period FROM knowledge.financial_overview WHERE tenant_id = ? ORDER BY 1",
            [FAMILY],
        ).fetchall()
        assert periods == [("month",), ("quarter",), ("week",)]
        files = conn.execute(
            f"SELECT data_file FROM ducklake_list_files('{lake.LAKE}', 'financial_overview', "
            "schema => 'knowledge')"
        ).fetchall()
        assert files and all(path.startswith(location.data_path) for (path,) in files)
    finally:
        conn.close()
    keys = s3_store.keys(location.data_path)
    # (dbt writes a table under a temporary name, `dim_accounts__dbt_tmp/`, then renames it.)
    for folder in (
        "ledger/bank_transactions/",
        "analytics/dim_accounts",
        "knowledge/financial_overview/",
    ):
        assert any(f"/{folder}" in key for key in keys), folder
    assert not list(pipeline["tmp"].rglob("*.parquet"))  # nothing of the lake on local disk
    maintenance = pipeline["runs"]["maintenance"].asset_materializations_for_node(
        "lake_maintenance"
    )[0]
    assert "data_files_after" in maintenance.metadata


def test_the_credentials_reach_no_event_log_and_no_dbt_artefact(
    pipeline: dict, s3_store: S3Store
) -> None:
    instance: dg.DagsterInstance = pipeline["instance"]
    events = "\n".join(
        repr(entry) for r in pipeline["runs"].values() for entry in instance.all_logs(r.run_id)
    )
    records = "\n".join(repr(instance.get_run_by_id(r.run_id)) for r in pipeline["runs"].values())
    dbt_files = [
        path
        for path in (
            dbt_project().project_dir / "target" / "runs" / pipeline["runs"]["dbt"].run_id
        ).rglob("*")
        if path.is_file()
    ]
    dbt_files += list((dbt_project().project_dir / "logs").glob("*.log"))
    assert any(p.name == "run_results.json" for p in dbt_files)
    for secret in (s3_store.secret_key, s3_store.access_key):
        assert secret not in events and secret not in records
        for path in dbt_files:
            assert secret.encode() not in path.read_bytes(), path
    catalog = b"".join(p.read_bytes() for p in pipeline["tmp"].glob("catalog.sqlite*"))
    assert s3_store.secret_key.encode() not in catalog


def test_retention_forgets_a_real_overview_in_the_bucket(
    pipeline: dict, s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_store.env().items():
        monkeypatch.setenv(name, value)
    location = pipeline["location"]
    conn = lake.connect(location, shared=False)
    try:
        texts = {
            markdown
            for (markdown,) in conn.execute(
                "SELECT markdown FROM knowledge.financial_overview"
            ).fetchall()
        }
        report = sweep_expired(conn, pipeline["day"] + timedelta(days=365), 180)
        assert report.entries_removed == 3 and report.history_files_rewritten > 0
    finally:
        conn.close()
    fs = s3_store.filesystem()
    stored = set()
    for key in s3_store.keys(location.data_path):
        if "/knowledge/financial_overview/" in key and key.endswith(".parquet"):
            table = pq.read_table(key, filesystem=fs)
            if "markdown" in table.column_names:
                stored |= set(table["markdown"].to_pylist())
    assert stored == {FORGOTTEN["markdown"]}, stored & texts


def test_pfo_sql_reads_the_s3_lake_as_each_load_left_it(pipeline: dict, s3_store: S3Store) -> None:
    location: lake.LakeLocation = pipeline["location"]
    env = {**location.resolved().env(), **s3_store.env()}
    conn = lake.connect(location, read_only=True, shared=False)
    try:
        loads = dict(
            conn.execute(
                "SELECT stream, load_id FROM ledger.loads WHERE status = 'succeeded' "
                "AND stream IN ('accounts', 'transactions')"
            ).fetchall()
        )
        now = conn.execute("SELECT count(*) FROM ledger.bank_transactions").fetchall()[0][0]
    finally:
        conn.close()
    counts = {}
    for stream, load_id in loads.items():
        result = CliRunner().invoke(
            main,
            ["sql", "--csv", "--as-of-load", load_id,
             "SELECT count(*) AS n FROM ledger.bank_transactions"],
            env=env,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        counts[stream] = result.stdout.splitlines()
    # The accounts load came first: as it left the lake, no transaction was there yet.
    assert counts == {"accounts": ["n", "0"], "transactions": ["n", str(now)]}
