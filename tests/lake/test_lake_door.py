"""The lake is reached through one door, `pfo_pipeline/lake/`, and its tables are made in one
place, the numbered migrations.

A static scan of the package (every string literal in Python, f-strings with their placeholders
as `{}`, and every `.sql` file):
- only `pfo_pipeline/lake/` opens a DuckDB database, attaches or detaches one, names a DuckLake
  catalog, calls DuckLake's functions or touches its catalog tables;
- every write names a table of its own package's schema: `ledger/` writes `ledger.*`,
  `knowledge/` writes `knowledge.*`, `telemetry/` writes `telemetry.*`; no other package writes
  (the webhook receiver's SQLite inbox is not the lake);
- a lake table or schema is created, altered or dropped only by a numbered migration (plus the
  migration runner's own record of them, and a load's scratch tables, outside the lake).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import pfo_pipeline
from pfo_pipeline import lake
from pfo_pipeline.lake.migrations import LATEST_VERSION, MIGRATIONS, migrate

PACKAGE = Path(pfo_pipeline.__file__).parent
LAKE_DOOR = PACKAGE / "lake"
MIGRATIONS_DIR = LAKE_DOOR / "sql" / "migrations"
# Not the lake: the webhook receiver's SQLite inbox (so it never competes with the lake's writers).
NOT_THE_LAKE = {
    PACKAGE / "webhooks" / "inbox.py",
    PACKAGE / "webhooks" / "sql" / "inbox_schema.sql",
}
# Where tables are created besides the migrations: their runner's record of which ran, and a
# load's scratch database (a local file, `_stage_*`, never the lake).
DDL_BESIDE_MIGRATIONS = {LAKE_DOOR / "migrations.py", LAKE_DOOR / "scratch.py"}
# Each package writes its own schema.
OWN_SCHEMA = {"ledger": "ledger", "knowledge": "knowledge", "telemetry": "telemetry"}

WRITE = re.compile(
    r"\b(?:insert\s+(?:or\s+\w+\s+)?into|delete\s+from|merge\s+into)\s+(?P<a>[\w.{}]+)"
    r"|\bupdate\s+(?P<b>[\w.{}]+)(?:\s+(?:as\s+)?\w+)?\s+set\b",
    re.IGNORECASE,
)
DDL = re.compile(
    r"\b(?:create|alter|drop)\s+(?:or\s+replace\s+)?(?P<temp>temp\s+|temporary\s+)?"
    r"(?:table|schema)\s+(?:if\s+(?:not\s+)?exists\s+)?(?P<name>[\w.{}]+)",
    re.IGNORECASE,
)


def lake_ddl(text: str) -> re.Match[str] | None:
    """A statement that creates, alters or drops a lake table or schema: not a temp table of
    the connection (TEMP, or an unqualified `_name`)."""
    for match in DDL.finditer(text):
        if not match.group("temp") and not match.group("name").startswith("_"):
            return match
    return None


def connection_local(target: str) -> bool:
    """A connection's own temp or registered table (`_name`, no schema): not the lake."""
    return "." not in target and target.startswith("_")


# Opening, attaching or reaching into a lake (or any DuckDB database).
DOOR_ONLY = re.compile(
    r"\b(?:attach|detach)\s|ducklake:|\bducklake_\w+\s*\(|__ducklake_metadata", re.IGNORECASE
)


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


def opens_a_database(path: Path) -> list[int]:
    """Lines that call `duckdb.connect` (a database of its own, outside the lake's door)."""
    if path.suffix != ".py":
        return []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "connect"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "duckdb"
    ]


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".sql"))


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{line}"


def test_only_the_lake_package_opens_attaches_or_reaches_into_the_lake() -> None:
    outside = [p for p in package_files() if LAKE_DOOR not in p.parents and p not in NOT_THE_LAKE]
    assert len(outside) > 60  # the scan really covers the package
    found = [where(p, line) for p in outside for line in opens_a_database(p)]
    found += [
        f"{where(p, line)}: {m.group(0)!r}"
        for p in outside
        for line, text in sql_texts(p)
        for m in [DOOR_ONLY.search(text)]
        if m
    ]
    assert found == [], "reach the lake through pfo_pipeline.lake (connect, open_lake, ...)"


def test_each_package_writes_only_its_own_schema() -> None:
    found = []
    for path in package_files():
        if LAKE_DOOR in path.parents or path in NOT_THE_LAKE:
            continue
        package = path.relative_to(PACKAGE).parts[0]
        for line, text in sql_texts(path):
            for match in WRITE.finditer(text):
                target = (match.group("a") or match.group("b")).lower()
                if connection_local(target):
                    continue
                schema = target.split(".", 1)[0] if "." in target else None
                own = OWN_SCHEMA.get(package)
                if own is None or schema != own:
                    found.append(f"{where(path, line)}: writes {target!r} from {package}/")
    assert found == [], "a package writes its own schema, through a connection from the lake"


def test_only_the_numbered_migrations_create_lake_tables() -> None:
    elsewhere = [
        p
        for p in package_files()
        if MIGRATIONS_DIR not in p.parents
        and p not in NOT_THE_LAKE
        and p not in DDL_BESIDE_MIGRATIONS
    ]
    found = [
        f"{where(p, line)}: {m.group(0)!r}"
        for p in elsewhere
        for line, text in sql_texts(p)
        for m in [lake_ddl(text)]
        if m
    ]
    assert found == []
    # The migration runner creates only its own record of which migrations ran.
    bootstrap = [t for _, t in sql_texts(LAKE_DOOR / "migrations.py") if lake_ddl(t)]
    assert bootstrap and all(
        "ledger.schema_migrations" in t or t == "CREATE SCHEMA IF NOT EXISTS ledger"
        for t in bootstrap
    )


def test_the_scan_catches_what_it_must_however_it_is_spelt(tmp_path: Path) -> None:
    """The guard itself: a write hidden in an f-string, an implicit concatenation, lower case, or
    a `.sql` file is found with its target; an attach, a DuckDB connection and a catalog read are
    found; a docstring that talks about deleting is not."""
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
        "    duckdb.connect()\n"
        "    conn.execute(\"ATTACH 'ducklake:sqlite:x' AS other\")\n"
        '    conn.execute("SELECT * FROM __ducklake_metadata_lake.ducklake_snapshot")\n'
    )
    statement = tmp_path / "sql" / "write.sql"
    statement.parent.mkdir()
    statement.write_text("-- a comment\nUPDATE ledger.quarantine SET resolved_at = now()\n")
    texts = [text for path in (module, statement) for _, text in sql_texts(path)]
    targets = sorted((m.group("a") or m.group("b")) for t in texts for m in WRITE.finditer(t))
    assert targets == [
        "knowledge.financial_overview",
        "ledger.loads",
        "ledger.quarantine",
        "ledger.{}",
        "telemetry.events",
    ]
    assert [t for t in texts if lake_ddl(t)] == ["CREATE TABLE analytics.extra (id INT)"]
    assert not lake_ddl("CREATE OR REPLACE TEMP TABLE _changes AS SELECT 1")
    assert not lake_ddl("DROP TABLE IF EXISTS _changes")
    assert lake_ddl("DROP TABLE IF EXISTS ledger.loads")
    assert len([t for t in texts if DOOR_ONLY.search(t)]) == 2
    assert opens_a_database(module) == [12]


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


def test_a_scratch_table_lives_in_the_loads_scratch_database_never_the_lake(
    tmp_path: Path,
) -> None:
    from pfo_pipeline.lake.scratch import Scratch

    conn = lake.connect(lake.LakeLocation.in_folder(tmp_path / "ledger"), shared=False)
    try:
        scratch = Scratch(conn)
        name = scratch.create_table("helper", "SELECT 1 AS x")
        assert name.startswith(f"{scratch.alias}.main.")
        lake_tables = conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
            [lake.LAKE, "helper"],
        ).fetchall()[0][0]
        assert lake_tables == 0
        scratch.close()
        assert not scratch.folder.exists()
    finally:
        conn.close()
