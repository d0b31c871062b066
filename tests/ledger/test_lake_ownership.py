"""The ledger package is the only writer of the lake, and the numbered migrations are the only
place a lake table is created.

A static scan of the package's SQL (string literals in Python, and `.sql` files): any INSERT,
UPDATE, DELETE, MERGE, CREATE/ALTER/DROP TABLE outside `pfo_pipeline/ledger/` fails, so a new
write cannot slip in beside the ledger's retry, idempotency and lineage rules. The SQLite webhook
inbox is not the lake and is the one exception; dbt's models live outside the package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import pfo_pipeline
from pfo_pipeline.ledger import lake
from pfo_pipeline.ledger.schema import LATEST_VERSION, MIGRATIONS, migrate

PACKAGE = Path(pfo_pipeline.__file__).parent
LEDGER = PACKAGE / "ledger"
MIGRATIONS_DIR = LEDGER / "sql" / "migrations"
# Not the lake: the webhook receiver's SQLite inbox (so it never competes with the ledger's writers).
NOT_THE_LAKE = {
    PACKAGE / "webhooks" / "inbox.py",
    PACKAGE / "webhooks" / "sql" / "inbox_schema.sql",
    # A load's local staging database; it refuses (at run time) any table outside `_stage_*`.
    PACKAGE / "ledger" / "stage_file.py",
}
# Where the migrations' own bookkeeping table (ledger.schema_migrations) is created.
MIGRATION_RUNNER = LEDGER / "schema.py"

WRITE = re.compile(
    r"\b(?:insert\s+(?:or\s+\w+\s+)?into"
    r"|update\s+[\w.{}]+(?:\s+(?:as\s+)?\w+)?\s+set"
    r"|delete\s+from"
    r"|merge\s+into"
    r"|(?:create|alter|drop)\s+(?:or\s+replace\s+)?(?:temp\s+|temporary\s+)?table"
    r"|create\s+(?:or\s+replace\s+)?schema)\b",
    re.IGNORECASE,
)
# A lake table or schema created (temp tables live in the connection, not the lake).
CREATE_IN_LAKE = re.compile(r"\bcreate\s+(?:or\s+replace\s+)?(?:table|schema)\b", re.IGNORECASE)


def sql_texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every SQL a file could run: a `.sql` file whole; in Python every string
    literal (f-strings with their placeholders as `{}`) except bare docstring-like statements."""
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".sql":
        return [(1, source)]
    tree = ast.parse(source, filename=str(path))
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant | ast.JoinedStr)
    }
    texts: list[tuple[int, str]] = []
    inside_fstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            inside_fstrings.update(id(v) for v in node.values)
            if id(node) not in prose:
                texts.append((node.lineno, "".join(str(p) for p in parts)))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in prose
            and id(node) not in inside_fstrings
        ):
            texts.append((node.lineno, node.value))
    return texts


def findings(paths: list[Path], pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in paths:
        for line, text in sql_texts(path):
            match = pattern.search(text)
            if match:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {match.group(0)!r}")
    return found


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".sql"))


def test_nothing_outside_the_ledger_package_writes_to_the_lake() -> None:
    outside = [p for p in package_files() if LEDGER not in p.parents and p not in NOT_THE_LAKE]
    assert len(outside) > 20  # the scan really covers the package
    assert findings(outside, WRITE) == [], (
        "write statements against the lake outside pfo_pipeline/ledger/: move them into a "
        "ledger module (one concern per module) and call it from here"
    )


def test_only_the_numbered_migrations_create_lake_tables() -> None:
    elsewhere = [
        p
        for p in package_files()
        if MIGRATIONS_DIR not in p.parents and p not in NOT_THE_LAKE and p != MIGRATION_RUNNER
    ]
    assert findings(elsewhere, CREATE_IN_LAKE) == []
    # The migration runner creates only its own record of which migrations ran.
    bootstrap = [t for _, t in sql_texts(MIGRATION_RUNNER) if CREATE_IN_LAKE.search(t)]
    assert bootstrap and all(
        "ledger.schema_migrations" in t or t == "CREATE SCHEMA IF NOT EXISTS ledger"
        for t in bootstrap
    )


def test_the_scan_catches_writes_however_they_are_spelt(tmp_path: Path) -> None:
    """The guard itself: a write hidden in an f-string, an implicit concatenation, lower case, or
    a `.sql` file is found; a docstring that talks about deleting is not."""
    module = tmp_path / "sneaky.py"
    module.write_text(
        '"""Deletes from nothing: DELETE FROM in prose is fine."""\n'
        "import duckdb\n"
        "def f(conn, table):\n"
        '    conn.execute(f"UPDATE ledger.{table} t SET x = 1")\n'
        '    conn.execute("insert into " "telemetry.events VALUES (?)", [1])\n'
        '    conn.execute("""\n    DELETE\n    FROM knowledge.financial_overview""")\n'
        '    conn.execute("MERGE INTO ledger.loads USING x ON true")\n'
        '    conn.execute("CREATE TABLE analytics.extra (id INT)")\n'
        '    conn.execute("SELECT count(*) FROM ledger.loads")\n'
    )
    statement = tmp_path / "sql" / "write.sql"
    statement.parent.mkdir()
    statement.write_text("-- a comment\nUPDATE ledger.quarantine SET resolved_at = now()\n")
    texts = [text for path in (module, statement) for _, text in sql_texts(path)]
    hits = [WRITE.search(t).group(0).split()[0].upper() for t in texts if WRITE.search(t)]
    assert sorted(hits) == ["CREATE", "DELETE", "INSERT", "MERGE", "UPDATE", "UPDATE"]
    assert [t for t in texts if CREATE_IN_LAKE.search(t)] == [
        "CREATE TABLE analytics.extra (id INT)"
    ]


def test_the_migrations_create_every_lake_table_and_nothing_else_is_needed(
    tmp_path: Path,
) -> None:
    """On a fresh lake the numbered migrations alone make every table the pipeline writes, in
    order and once (a second run applies nothing)."""
    assert [v for v, _ in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
    declared = {
        name.lower()
        for _, ddl in MIGRATIONS
        for name in re.findall(r"CREATE TABLE\s+([\w.]+)", ddl, flags=re.IGNORECASE)
    }
    conn = lake.connect(lake.LakeLocation.in_folder(tmp_path / "ledger"), shared=False)
    try:
        assert migrate(conn) == LATEST_VERSION
        assert migrate(conn) == LATEST_VERSION
        tables = {
            f"{schema}.{name}"
            for schema, name in conn.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?",
                [lake.LAKE],
            ).fetchall()
        }
        applied = conn.execute(
            "SELECT version FROM ledger.schema_migrations ORDER BY version"
        ).fetchall()
    finally:
        conn.close()
    assert tables == declared | {"ledger.schema_migrations"}
    assert [v for (v,) in applied] == list(range(1, LATEST_VERSION + 1))
    for table in ("ledger.bank_transactions", "knowledge.financial_overview", "telemetry.events"):
        assert table in declared


@pytest.mark.parametrize("path", sorted(MIGRATIONS_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_migration_files_are_numbered_and_named(path: Path) -> None:
    assert re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", path.name)


def test_the_staging_helper_refuses_a_lake_table() -> None:
    import duckdb
    import pytest

    from pfo_pipeline.ledger.stage_file import create_stage_table

    conn = duckdb.connect()
    with pytest.raises(ValueError, match="not in a staging database"):
        create_stage_table(conn, "ledger.bank_transactions", "SELECT 1 AS x")
