"""`pfo sql` only reads: every way a statement could write (the lake, another database, a file,
a setting, an extension) is refused, in a query and at the prompt, and the ledger is unchanged.
Time travel (`--as-of`, `--as-of-load`) still reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pfo_pipeline import lake
from pfo_pipeline.cli import main
from pfo_pipeline.lake.read_only import ReadOnlyViolation, check_statements
from tests.conftest import ledger_digests, open_ledger, query


def _env(ledger: Path) -> dict[str, str]:
    return lake.LakeLocation.in_folder(ledger).env()


def _sql(ledger: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["sql", *args], env=_env(ledger), input=input)


@pytest.fixture()
def ledger(tmp_path: Path) -> Path:
    folder = tmp_path / "ledger"
    conn = open_ledger(folder)
    try:
        conn.execute(
            "INSERT INTO ledger.sync_cursors VALUES "
            "('tenant.a', 'conn-a', 'transactions', TIMESTAMP '2026-05-01 08:00', 'load_1'), "
            "('tenant.b', 'conn-b', 'transactions', TIMESTAMP '2026-05-02 08:00', 'load_2')"
        )
        # More rows than DuckLake inlines in its catalog: these are read from a Parquet file.
        conn.execute(
            "INSERT INTO ledger.sync_cursors SELECT 'tenant.z' || i, 'conn', 'balances', "
            "TIMESTAMP '2026-05-01 08:00', 'load_' || i FROM range(300) t(i)"
        )
    finally:
        conn.close()
    return folder


def attacks(ledger: Path, outside: Path) -> list[str]:
    location = lake.LakeLocation.in_folder(ledger).resolved()
    catalog = location.catalog
    data = location.data_path
    return [
        # the case: the lake attached a second time, read-write, then written
        f"ATTACH 'ducklake:{catalog}' AS again (DATA_PATH '{data}'); "
        "DELETE FROM again.ledger.sync_cursors",
        f"ATTACH 'ducklake:{catalog}' AS again (DATA_PATH '{data}')",
        f"ATTACH '{outside / 'other.duckdb'}' AS other",
        "DETACH lake",
        f"COPY (SELECT * FROM ledger.sync_cursors) TO '{outside / 'leak.csv'}'",
        f"EXPORT DATABASE '{outside / 'export'}'",
        "INSTALL httpfs",
        "LOAD sqlite_scanner",
        "SET memory_limit = '8GB'",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "PRAGMA enable_profiling",
        "CALL ducklake_expire_snapshots('lake', older_than => now())",
        "DELETE FROM ledger.sync_cursors",
        "UPDATE ledger.sync_cursors SET load_id = 'x'",
        "CREATE TEMP TABLE scratch AS SELECT 1",
        "SELECT 1; DELETE FROM ledger.sync_cursors",
        "EXPLAIN ANALYZE DELETE FROM ledger.sync_cursors",
    ]


def test_every_way_to_write_is_refused_and_the_ledger_is_unchanged(
    ledger: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    before = ledger_digests(ledger)
    for statement in attacks(ledger, outside):
        result = _sql(ledger, statement)
        assert result.exit_code != 0, (statement, result.output)
        assert "only reads" in result.output, (statement, result.output)
    # the prompt refuses each too, and goes on to the next statement
    typed = "".join(f"{statement};\n" for statement in attacks(ledger, outside))
    prompt = _sql(ledger, input=typed + "SELECT count(*) AS n FROM ledger.sync_cursors;\n.quit\n")
    assert prompt.exit_code == 0, prompt.output
    assert prompt.output.count("only reads") == len(attacks(ledger, outside))
    assert list(outside.iterdir()) == []
    assert ledger_digests(ledger) == before
    assert query(ledger, "SELECT count(*) FROM ledger.sync_cursors") == [(302,)]


def test_files_outside_the_lake_cannot_be_read_even_by_a_select(
    ledger: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("iban\nFR7630004000031234567890143\n")
    for statement in (
        f"SELECT * FROM read_csv('{secret}')",
        f"SELECT * FROM '{secret}'",
        "SELECT * FROM glob('/etc/*')",
    ):
        result = _sql(ledger, statement)
        assert result.exit_code != 0 and "FR76" not in result.output, (statement, result.output)
        assert "disabled by configuration" in result.output, result.output


def test_reads_and_time_travel_still_work(ledger: Path) -> None:
    assert list((ledger / "lake").rglob("*.parquet"))  # reads go to the lake's files too
    rows = _sql(ledger, "--csv", "SELECT tenant_id FROM ledger.sync_cursors ORDER BY 1 LIMIT 2")
    assert rows.exit_code == 0, rows.output
    assert rows.output.splitlines() == ["tenant_id", "tenant.a", "tenant.b"]
    total = _sql(ledger, "--csv", "SELECT count(*) AS n FROM ledger.sync_cursors")
    assert total.output.splitlines() == ["n", "302"], total.output
    for statement in (
        "SHOW TABLES",
        "DESCRIBE ledger.sync_cursors",
        "SUMMARIZE ledger.sync_cursors",
        "EXPLAIN SELECT * FROM ledger.sync_cursors",
        "FROM ledger.sync_cursors",
        "SELECT count(*) FROM lake.snapshots()",
    ):
        result = _sql(ledger, statement)
        assert result.exit_code == 0, (statement, result.output)
    [(moment,)] = query(ledger, "SELECT max(snapshot_time) FROM lake.snapshots()")
    conn = open_ledger(ledger)
    try:
        conn.execute("DELETE FROM ledger.sync_cursors WHERE tenant_id = 'tenant.b'")
    finally:
        conn.close()
    as_of = _sql(
        ledger, "--csv", "--as-of", str(moment), "SELECT count(*) AS n FROM ledger.sync_cursors"
    )
    assert as_of.exit_code == 0, as_of.output
    assert as_of.stdout.splitlines() == ["n", "302"]  # (stderr says the moment read)
    refused = _sql(ledger, "--as-of", str(moment), "COPY ledger.sync_cursors TO '/tmp/x.csv'")
    assert refused.exit_code != 0 and "only reads" in refused.output


def test_statement_check_names_what_it_refused() -> None:
    import duckdb

    conn = duckdb.connect()
    check_statements(conn, "SELECT 1; FROM range(3); EXPLAIN SELECT 1")
    with pytest.raises(ReadOnlyViolation, match="ATTACH statement is refused"):
        check_statements(conn, "SELECT 1; ATTACH ':memory:' AS x")
    with pytest.raises(ReadOnlyViolation):
        check_statements(conn, "SELEC nonsense")
