"""The whole graph for a tenant: ledger sync -> dbt build -> financial overview, in real Dagster
materialisations; the overview's figures are checked against independent SQL over the ledger."""

from __future__ import annotations

import base64
import csv
import io
import re
import shutil
import struct
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

import dagster as dg
import orjson
import pytest
from click.testing import CliRunner

from pfo_pipeline import lake
from pfo_pipeline.categoriser.merchants import merchant_names_pattern
from pfo_pipeline.cli import main
from pfo_pipeline.definitions import materializable
from pfo_pipeline.defs.analytics.project import dbt_project
from pfo_pipeline.knowledge import periods
from pfo_pipeline.knowledge.chart import plan_panels
from pfo_pipeline.knowledge.overview import OverviewRequest, build_overview
from pfo_pipeline.knowledge.periods import period_window
from tests.analyst import reading_analyst
from tests.conftest import (
    FAMILY,
    open_ledger,
    query,
    resources_for,
    synced_family,
    using_tenants_file,
)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    """One tenant's ledger, marts and today's overview, built once for the module."""
    tmp = tmp_path_factory.mktemp("pipeline")
    with (
        synced_family(tmp, seed=21, transactions=4000) as (emulator, tenants, ledger),
        using_tenants_file(tenants),
        reading_analyst(ledger, tmp) as analyst_reads,  # an analyst queries all along
    ):
        resources = resources_for(ledger)
        # The build runs dbt itself only: no `dbt --version` subprocess first.
        with mock.patch(
            "dagster_dbt.core.resource.check_output", side_effect=AssertionError("dbt --version")
        ):
            dbt_run = dg.materialize(
                materializable(),
                selection=dg.AssetSelection.groups("analytics", "insights"),
                resources=resources,
            )
        assert dbt_run.success
        # The emulator's day (Powens' Europe/Paris date, when its balances were snapshotted),
        # not the machine's: a UTC date is another day for an hour or two each night.
        day = emulator.state.now.date()
        key = dg.MultiPartitionKey({"tenant": FAMILY, "day": day.isoformat()})
        overview_run = dg.materialize(
            materializable(),
            selection=dg.AssetSelection.assets("financial_overview"),
            partition_key=key,
            resources=resources,
        )
        assert overview_run.success
    yield {
        "ledger": ledger,
        "resources": resources,
        "key": key,
        "day": day,
        "dbt_run": dbt_run,
        "overview_run": overview_run,
        "analyst_reads": analyst_reads,
    }


def test_an_analyst_reads_throughout_dbt_and_the_overview(pipeline) -> None:
    """dbt and the overview write the lake while an analyst reads it in another process: no
    read fails or sees part of a write (the syncs' side: tests/lake/test_lake.py)."""
    reads = pipeline["analyst_reads"]
    assert reads.attempted >= 10, reads  # reads every 0.2 s through a dbt build and more
    assert reads.failed == 0, reads.errors
    assert reads.torn == 0
    rows = query(pipeline["ledger"], "SELECT count(*) FROM ledger.bank_transactions")[0][0]
    assert reads.last_rows == rows


def entry(ledger: Path, period: str) -> dict:
    rows = query(
        ledger,
        "SELECT summary, period_start, period_end, content_hash FROM knowledge.financial_overview "
        "WHERE tenant_id = ? AND period = ?",
        [FAMILY, period],
    )
    assert len(rows) == 1
    summary, start, end, content_hash = rows[0]
    return {"summary": orjson.loads(summary), "start": start, "end": end, "hash": content_hash}


INDEPENDENT_CASHFLOW = """
SELECT t.currency,
       sum(CASE WHEN t.amount > 0 THEN t.amount ELSE 0 END) AS inflow,
       sum(CASE WHEN t.amount < 0 THEN -t.amount ELSE 0 END) AS outflow,
       sum(t.amount) AS net, count(*) AS n
FROM ledger.bank_transactions t JOIN ledger.bank_accounts a ON a.id = t.account_id
WHERE t.tenant_id = ? AND t.date BETWEEN ? AND ?
  AND t.status <> 'cancelled' AND t.standardized_category <> 'internal_transfer'
  AND a.account_type <> 'loan'
GROUP BY 1 ORDER BY 1
"""


@pytest.mark.parametrize("period", ["week", "month", "quarter"])
def test_overview_figures_equal_independent_sql_over_the_ledger(pipeline, period: str) -> None:
    ledger = pipeline["ledger"]
    written = entry(ledger, period)
    start, end = period_window(period, pipeline["day"])
    assert (written["start"], written["end"]) == (start, end)
    expected = query(ledger, INDEPENDENT_CASHFLOW, [FAMILY, start, end])
    got = {c["currency"]: c for c in written["summary"]["cashflow"]}
    assert set(got) == {currency for currency, *_ in expected}
    for currency, inflow, outflow, net, count in expected:
        assert Decimal(got[currency]["inflow"]) == inflow
        assert Decimal(got[currency]["outflow"]) == outflow
        assert Decimal(got[currency]["net"]) == net
        assert got[currency]["transactions"] == count


def test_currencies_are_kept_apart_and_shares_add_up(pipeline) -> None:
    summary = entry(pipeline["ledger"], "quarter")["summary"]
    assert {c["currency"] for c in summary["cashflow"]} == {"EUR", "USD"}
    for currency in ("EUR", "USD"):
        shares = [
            Decimal(c["share_of_outflow_pct"])
            for c in summary["categories"]
            if c["currency"] == currency
        ]
        assert abs(sum(shares) - 100) <= Decimal("0.5")


def test_balances_use_aliases_and_start_end_min_max(pipeline) -> None:
    summary = entry(pipeline["ledger"], "month")["summary"]
    accounts = {b["account"]: b for b in summary["balances"]}
    assert {"checking 1", "savings 1", "loan 1", "card 1"} <= set(accounts)
    for balance in accounts.values():
        assert Decimal(balance["min"]) <= Decimal(balance["start"]) <= Decimal(balance["max"])
        assert Decimal(balance["min"]) <= Decimal(balance["end"]) <= Decimal(balance["max"])
    current = dict(
        query(
            pipeline["ledger"],
            "SELECT d.account_alias, b.current_balance FROM ledger.account_balances b "
            "JOIN analytics.dim_accounts d USING (account_id)",
        )
    )
    for alias, balance in accounts.items():
        assert Decimal(balance["end"]) == current[alias]  # today is the snapshot day


def test_the_knowledge_space_holds_no_pii_and_the_check_passed(pipeline) -> None:
    ledger = pipeline["ledger"]
    checks = pipeline["overview_run"].get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["knowledge_space_has_no_pii"] and checks[0].passed
    text = " ".join(
        str(v)
        for row in query(ledger, "SELECT markdown, summary FROM knowledge.financial_overview")
        for v in row
    )
    ibans = [
        i for (i,) in query(ledger, "SELECT iban FROM ledger.bank_accounts WHERE iban IS NOT NULL")
    ]
    wordings = [
        w for (w,) in query(ledger, "SELECT DISTINCT description FROM ledger.bank_transactions")
    ]
    assert ibans and wordings
    # Businesses of the merchant directory may be named: "NETFLIX" is a wording and a
    # public merchant. Blank those names out, as the PII check does; nothing else may remain.
    # Opaque hex ids (transaction ids, payee keys) are blanked too: "edf" may occur inside one.
    public = re.sub(merchant_names_pattern(), " ~ ", text.lower())
    public = re.sub(r"[0-9a-f]{12,}", " # ", public)
    assert "netflix" in text.lower()
    assert not [v for v in ibans + wordings if v and v.lower() in public]
    chunks = query(
        ledger, "SELECT max(token_count), count(*) FROM knowledge.financial_overview_chunks"
    )
    assert chunks[0][0] <= 600 and chunks[0][1] >= 3


def test_the_dbt_build_starts_from_the_projects_parse_and_keeps_its_target_under_its_run(
    pipeline,
) -> None:
    """Its lake differs from the one the session's parse was made with (none): the profile names
    the lake by a secret, so dbt still only re-parses what changed since that parse."""
    project = dbt_project()
    target = project.project_dir / project.target_path / "runs" / pipeline["dbt_run"].run_id
    assert (target / "run_results.json").exists()
    events = [orjson.loads(line)["info"]["name"] for line in (target / "dbt.log").open()]
    assert "UnableToPartialParse" not in events
    assert "PartialParsingEnabled" in events


def test_dbt_tests_surface_as_asset_checks_and_pass(pipeline) -> None:
    evaluations = pipeline["dbt_run"].get_asset_check_evaluations()
    names = {e.check_name for e in evaluations}
    assert len(evaluations) >= 15 and all(e.passed for e in evaluations)
    assert any("accepted_values" in n for n in names) and any("relationships" in n for n in names)
    assert {"assert_balances_reconcile", "assert_no_pii_in_analytics"} <= names


def test_every_mart_materialisation_carries_its_row_count(pipeline) -> None:
    """Counted on the lake (dagster-dbt's `fetch_row_counts` cannot open the DuckLake profile):
    each table's count is its rows in the lake; views carry none (counting would run them)."""
    counted = {}
    for event in pipeline["dbt_run"].get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        key = materialization.asset_key.to_user_string()
        counted[key] = materialization.metadata.get("dagster/row_count")
    tables = {key: value for key, value in counted.items() if not key.startswith("staging/")}
    assert len(tables) >= 10 and all(value is not None for value in tables.values()), counted
    assert all(counted[key] is None for key in counted if key.startswith("staging/"))
    for key, value in tables.items():
        schema, name = key.split("/")
        (rows,) = query(pipeline["ledger"], f"SELECT count(*) FROM {schema}.{name}")[0]
        assert value.value == rows, key
    assert tables["analytics/fct_daily_cashflow"].value > 0


def test_every_staging_column_is_described() -> None:
    """Each column a staging view selects has a description in its schema.yml."""
    import re

    import yaml

    from pfo_pipeline import settings

    staging = settings.DBT_PROJECT_DIR / "models" / "staging"
    documented = {
        model["name"]: {c["name"]: c.get("description") for c in model.get("columns", [])}
        for model in yaml.safe_load((staging / "schema.yml").read_text())["models"]
    }
    for view in sorted(staging.glob("stg_*.sql")):
        select = view.read_text().split("select", 1)[1].split("from", 1)[0]
        selected = [re.split(r"\s+as\s+", c.strip())[-1] for c in select.split(",")]
        described = documented[view.stem]
        assert selected and all(described.get(c) for c in selected), (view.stem, selected)
        assert set(described) == set(selected), view.stem


def test_analytics_marts_carry_no_pii_columns(pipeline) -> None:
    columns = {
        c
        for (c,) in query(
            pipeline["ledger"],
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'analytics'",
        )
    }
    assert not columns & {"iban", "bic", "account_number_masked", "description", "counterparty_name",
                          "counterparty_account", "display_name", "metadata"}  # fmt: skip


def test_rematerialising_a_partition_replaces_its_entry(pipeline) -> None:
    ledger = pipeline["ledger"]
    before = {p: entry(ledger, p)["hash"] for p in ("week", "month", "quarter")}
    chunks_before = query(ledger, "SELECT count(*) FROM knowledge.financial_overview_chunks")[0][0]
    again = dg.materialize(
        materializable(),
        selection=dg.AssetSelection.assets("financial_overview"),
        partition_key=pipeline["key"],
        resources=pipeline["resources"],
    )
    assert again.success
    assert query(ledger, "SELECT count(*) FROM knowledge.financial_overview")[0][0] == 3
    assert {p: entry(ledger, p)["hash"] for p in before} == before
    assert (
        query(ledger, "SELECT count(*) FROM knowledge.financial_overview_chunks")[0][0]
        == chunks_before
    )
    metadata = again.asset_materializations_for_node("financial_overview")[0].metadata
    assert "## Cashflow" in metadata["preview"].value
    assert metadata["trend_chart"].value.startswith("![Balance and cashflow trend](data:image/png")


def test_the_trend_chart_is_an_inline_image_with_a_panel_per_class_and_currency(pipeline) -> None:
    metadata = pipeline["overview_run"].asset_materializations_for_node("financial_overview")[0]
    markdown = metadata.metadata["trend_chart"].value
    png = base64.b64decode(markdown.split("base64,", 1)[1].rstrip(")"))
    assert png.startswith(b"\x89PNG")
    conn = open_ledger(pipeline["ledger"], read_only=True)
    try:
        overview = build_overview(
            conn,
            OverviewRequest(
                tenant_id=FAMILY,
                period="month",
                as_of=date.fromisoformat(pipeline["key"].keys_by_dimension["day"]),
            ),
        )
        panels = {panel.title: panel for panel in plan_panels(conn, overview)}
        aliases = dict(
            conn.execute(
                "SELECT account_alias, account_type FROM analytics.dim_accounts "
                "WHERE tenant_id = ?",
                [FAMILY],
            ).fetchall()
        )
    finally:
        conn.close()
    # The loan has its own scale, and EUR and USD never share an axis.
    assert {"Cash balances (EUR)", "Cash balances (USD)", "Loans balances (EUR)"} <= set(panels)
    assert {"Net cashflow (EUR)", "Net cashflow (USD)"} <= set(panels)
    assert all(aliases[a] == "loan" for a in panels["Loans balances (EUR)"].series)
    assert all(aliases[a] != "loan" for a in panels["Cash balances (EUR)"].series)
    for panel in panels.values():
        days = [d for points in panel.series.values() for d, _ in points]
        assert overview.period_start <= min(days) and max(days) <= overview.period_end
    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    assert height > width / 2 and height > 120 * len(panels)  # a panel each, none squeezed


def test_partitions_older_than_180_days_are_neither_offered_nor_accepted(pipeline) -> None:
    from pfo_pipeline.defs.partitions import overview_partitions

    days = {key.keys_by_dimension["day"] for key in overview_partitions().get_partition_keys()}
    today = periods.today()
    assert (today - timedelta(days=180)).isoformat() in days
    assert (today - timedelta(days=181)).isoformat() not in days
    old = (today - timedelta(days=181)).isoformat()
    with pytest.raises(dg.DagsterUnknownPartitionError):
        dg.materialize(
            materializable(),
            selection=dg.AssetSelection.assets("financial_overview"),
            partition_key=dg.MultiPartitionKey({"tenant": FAMILY, "day": old}),
            resources=pipeline["resources"],
        )


def test_the_sweep_removes_only_expired_entries_idempotently(pipeline, tmp_path) -> None:
    copy = tmp_path / "ledger-copy"
    shutil.copytree(pipeline["ledger"], copy)
    from pfo_pipeline.knowledge.retention import sweep_expired

    conn = open_ledger(copy, relocated=True)
    try:
        end = conn.execute("SELECT max(period_end) FROM knowledge.financial_overview").fetchall()[
            0
        ][0]
        # An orphan chunk (its entry gone) and an entry whose stored expiry drifted from the rule.
        conn.execute(
            "INSERT INTO knowledge.financial_overview_chunks VALUES "
            "('gone-000', 'gone', ?, 0, 'orphan', 1, DATE '2999-01-01')",
            [FAMILY],
        )
        conn.execute(
            "UPDATE knowledge.financial_overview SET expires_at = DATE '2999-01-01' "
            "WHERE period = 'week'"
        )
        kept = sweep_expired(conn, end + timedelta(days=180), 180)
        assert kept.entries_removed == 0 and kept.chunks_removed == 1  # the orphan only
        drifted = conn.execute(
            "SELECT count(*) FROM knowledge.financial_overview WHERE expires_at <> period_end + 180"
        ).fetchall()[0][0]
        assert drifted == 0
        stale_chunks = conn.execute(
            "SELECT count(*) FROM knowledge.financial_overview_chunks c "
            "JOIN knowledge.financial_overview e USING (entry_id) WHERE c.expires_at <> e.expires_at"
        ).fetchall()[0][0]
        assert stale_chunks == 0
        removed = sweep_expired(conn, end + timedelta(days=181), 180)
        assert removed.entries_removed == 3 and removed.chunks_removed > 0
        assert sweep_expired(conn, end + timedelta(days=181), 180).entries_removed == 0
        assert (
            conn.execute("SELECT count(*) FROM knowledge.financial_overview_chunks").fetchall()[0][
                0
            ]
            == 0
        )
    finally:
        conn.close()


def test_the_sweep_deletes_expired_overview_runs_from_dagster(pipeline) -> None:
    from pfo_pipeline.defs.knowledge.dagster_retention import (
        OVERVIEW,
        expired_overview_runs,
        forget_expired_overview_runs,
    )

    day = date.fromisoformat(pipeline["key"].keys_by_dimension["day"])
    with dg.DagsterInstance.ephemeral() as instance:
        run = dg.materialize(
            materializable(),
            selection=dg.AssetSelection.assets("financial_overview"),
            partition_key=pipeline["key"],
            resources=pipeline["resources"],
            instance=instance,
        )
        assert run.success
        assert expired_overview_runs(instance, day + timedelta(days=180)) == []
        deleted = forget_expired_overview_runs(instance, day + timedelta(days=181))
        assert deleted == [run.run_id]
        assert instance.get_run_by_id(run.run_id) is None
        assert instance.get_materialized_partitions(OVERVIEW) == set()
        assert forget_expired_overview_runs(instance, day + timedelta(days=181)) == []


def test_every_entry_says_what_is_coming_and_what_is_odd(pipeline) -> None:
    for period in ("week", "month", "quarter"):
        summary = entry(pipeline["ledger"], period)["summary"]
        assert {"commitments", "due_next", "anomalies", "net_worth", "category_changes",
                "savings_rate"} <= set(summary)  # fmt: skip
        worth = summary["net_worth"]
        for position in worth["positions"]:
            # converted with a stated rate, or named as not converted: never added without one
            assert (position["rate"] is None) == (
                position["currency"] in worth["unconverted_currencies"]
            )
    monthly = {
        (c["payee"], c["cadence"])
        for c in entry(pipeline["ledger"], "month")["summary"]["commitments"]
    }
    assert {
        ("ACME SAS", "monthly"),
        ("Home loan (bank)", "monthly"),
        ("Netflix", "monthly"),
    } <= monthly
    markdown = query(
        pipeline["ledger"],
        "SELECT markdown FROM knowledge.financial_overview WHERE period = 'month'",
    )[0][0]
    for heading in ("## Recurring commitments", "## Due in the next 30 days", "## Unusual transactions",
                    "## Net worth (EUR)", "## Change against the previous month"):  # fmt: skip
        assert heading in markdown


def test_every_mart_and_column_is_described_in_the_database(pipeline) -> None:
    """dbt's descriptions reach the lake (persist_docs), where `pfo sql "DESCRIBE …"` and any
    SQL client show them: no mart, and no column of a mart, without a comment."""
    conn = open_ledger(pipeline["ledger"], read_only=True)
    try:
        tables = conn.execute(
            "SELECT table_name, coalesce(comment, '') FROM duckdb_tables() "
            "WHERE database_name = 'lake' AND schema_name = 'analytics'"
        ).fetchall()
        columns = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = 'lake' AND schema_name = 'analytics' "
            "AND coalesce(comment, '') = ''"
        ).fetchall()
    finally:
        conn.close()
    assert len(tables) >= 9
    assert [name for name, comment in tables if not comment.strip()] == []
    assert columns == [], columns


def readme_questions() -> list[tuple[str, list[str]]]:
    """Each `pfo sql "…"` example under the README's "Analytics marts", with the column names of
    the output the README shows for it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Analytics marts", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```\n```\n(.*?)```", section, flags=re.S)
    questions = []
    for command, output in blocks:
        sql = re.fullmatch(r'\s*pfo sql "(.*)"\s*', command, flags=re.S)
        assert sql, command
        header = next(line for line in output.splitlines() if line.startswith("│"))
        questions.append((sql.group(1), [c.strip() for c in header.strip("│").split("│")]))
    return questions


def test_the_readmes_analyst_questions_run_as_written(pipeline) -> None:
    """The README's example questions, run through `pfo sql` on a synced ledger with its marts,
    answer with rows and the columns the README shows."""
    questions = readme_questions()
    assert len(questions) >= 4
    env = lake.LakeLocation.in_folder(pipeline["ledger"]).env()
    for sql, columns in questions:
        result = CliRunner().invoke(main, ["sql", "--csv", sql], env=env)
        assert result.exit_code == 0, (sql, result.output)
        header, *rows = list(csv.reader(io.StringIO(result.output)))
        assert header == columns, sql
        assert rows, sql


def _text_in_parquet(folder: Path, needles: list[str]) -> list[str]:
    """Needles found in any string value of any Parquet file under `folder` (the files are
    compressed: a byte search would prove nothing)."""
    import pyarrow.parquet as pq

    found = []
    for path in folder.rglob("*.parquet"):
        table = pq.read_table(path)
        for column in table.column_names:
            values = table[column]
            if str(values.type) not in ("string", "large_string", "extension<arrow.json>"):
                continue
            text = "\n".join(str(v) for v in values.to_pylist() if v is not None)
            found += [f"{path.name}:{column}:{n[:30]}" for n in needles if n in text]
    return found


def test_retention_forgets_an_expired_overview_everywhere(
    pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overview that passes its retention is gone from the tables, from time travel before the
    sweep, from the catalog's statistics and file, from Dagster's storage (its runs and the
    asset's index row), from telemetry and from every data file; the entries still inside the
    retention are untouched."""
    import sqlite3

    from pfo_pipeline.defs.knowledge import assets as knowledge_assets

    ledger, resources, day = pipeline["ledger"], pipeline["resources"], pipeline["day"]
    old_day = day - timedelta(days=10)
    old_key = dg.MultiPartitionKey({"tenant": FAMILY, "day": old_day.isoformat()})
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        for key in (pipeline["key"], old_key):  # the old day's run is the asset's last one
            run = dg.materialize(
                materializable(),
                selection=dg.AssetSelection.assets("financial_overview"),
                partition_key=key,
                resources=resources,
                instance=instance,
            )
            assert run.success
        old_run = run.run_id
        entries = query(
            ledger,
            "SELECT period_end, markdown FROM knowledge.financial_overview ORDER BY period_end",
        )
        kept_text = "\n".join(markdown for end, markdown in entries if end == day)
        old_text = [markdown for end, markdown in entries if end == old_day]
        assert len(old_text) == 3  # week, month, quarter ending on the old day
        # What only the old entries said: their lines that no kept entry has.
        needles = sorted(
            {
                line
                for text in old_text
                for line in text.splitlines()
                if len(line) > 24 and line not in kept_text
            }
        )
        assert needles, "the old and the kept overviews say the same"
        [(before_sweep,)] = query(ledger, "SELECT max(snapshot_time) FROM lake.snapshots()")

        # The sweep, 181 days after the old day: its entries expire, today's do not.
        monkeypatch.setattr(knowledge_assets, "today", lambda: old_day + timedelta(days=181))
        sweep = dg.materialize(
            materializable(),
            selection=dg.AssetSelection.assets("knowledge_retention_sweep"),
            resources=resources,
            instance=instance,
        )
        assert sweep.success
        metadata = sweep.asset_materializations_for_node("knowledge_retention_sweep")[0].metadata
        assert metadata["entries_removed"].value == 3
        assert metadata["dagster_runs_deleted"].value == 1

        # Tables: the old entries and their chunks are gone, today's are all there.
        assert [e for (e,) in query(ledger, "SELECT period_end FROM knowledge.financial_overview")
                ] == [day] * 3  # fmt: skip
        assert query(
            ledger,
            "SELECT count(*) FROM knowledge.financial_overview_chunks c WHERE NOT EXISTS "
            "(SELECT 1 FROM knowledge.financial_overview e WHERE e.entry_id = c.entry_id)",
        ) == [(0,)]
        # Time travel to before the sweep: the old entries existed, what they said is gone.
        env = lake.LakeLocation.in_folder(ledger).env()
        as_of = CliRunner().invoke(
            main,
            ["sql", "--csv", "--as-of", str(before_sweep),
             "SELECT e.period_end, e.markdown, e.summary, c.content FROM "
             "knowledge.financial_overview e JOIN knowledge.financial_overview_chunks c "
             "USING (entry_id)"],
            env=env,
        )  # fmt: skip
        assert as_of.exit_code == 0, as_of.output
        assert old_day.isoformat() in as_of.output and "[forgotten" in as_of.output
        assert not [n for n in needles if n in as_of.output]
        assert kept_text.splitlines()[0] in as_of.output  # the kept entries still read
        # The catalog: no min/max of any text column, and none of the text in its file.
        catalog = ledger / "pfo_catalog.sqlite"
        with sqlite3.connect(catalog) as db:
            stats = db.execute(
                "SELECT s.min_value, s.max_value FROM ducklake_file_column_stats s "
                "JOIN ducklake_column c ON c.table_id = s.table_id AND c.column_id = s.column_id "
                "WHERE c.column_name IN ('markdown', 'summary', 'content') UNION ALL "
                "SELECT s.min_value, s.max_value FROM ducklake_table_column_stats s "
                "JOIN ducklake_column c ON c.table_id = s.table_id AND c.column_id = s.column_id "
                "WHERE c.column_name IN ('markdown', 'summary', 'content')"
            ).fetchall()
        assert stats and all(row == (None, None) for row in stats)
        catalog_bytes = b"".join(p.read_bytes() for p in ledger.glob("pfo_catalog.sqlite*"))
        assert not [n for n in needles if n.encode() in catalog_bytes]
        # Every data file of the lake (current, ended, scheduled for deletion).
        assert _text_in_parquet(ledger / "lake", needles) == []
        # Telemetry: ids only.
        events = "\n".join(str(r) for r in query(ledger, "SELECT * FROM telemetry.events"))
        assert not [n for n in needles if n in events]

        # Dagster: the old run is gone, and the asset's index row no longer holds its event.
        assert instance.get_run_by_id(old_run) is None
        record = instance.get_latest_materialization_event(dg.AssetKey("financial_overview"))
        assert record is not None and record.run_id != old_run
        dagster_bytes = b"".join(
            p.read_bytes() for p in home.rglob("*") if p.is_file() and p.suffix != ".lock"
        )
        assert not [n for n in needles if n.encode() in dagster_bytes]
        import sqlite3 as sqlite

        with sqlite.connect(home / "history" / "runs" / "index.db") as index:
            tables = [
                t for (t,) in index.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            holding = [t for t in tables if any(
                old_run in str(row) for row in index.execute(f"SELECT * FROM {t}"))]  # fmt: skip
        assert holding in ([], ["asset_check_executions"]), holding  # ids only, if anything
