"""What `pfo sql` lets a query do: read the lake, nothing else.

Two locks, because either alone has a hole. The lake is attached read-only, but DuckDB still
lets a statement ATTACH the same catalog again read-write (that deleted rows of
`ledger.sync_cursors` once), LOAD an extension or change a setting. So:

1. every statement is parsed first and only `SELECT` (with `SHOW`, `DESCRIBE`, `SUMMARIZE`,
   `FROM …`, which DuckDB parses as selects) and `EXPLAIN` of a select may run;
2. once the lake is attached, DuckDB itself is locked down: no file outside the lake's data path
   (`enable_external_access = false`, `allowed_directories`), and `lock_configuration = true`
   so no statement can undo that.
"""

from __future__ import annotations

import duckdb

from pfo_pipeline.lake.location import LakeLocation

ALLOWED = {duckdb.StatementType.SELECT}
SETTINGS_LOCKED_LAST = ("enable_external_access", "lock_configuration")


class ReadOnlyViolation(ValueError):
    """A statement `pfo sql` refuses to run: anything but a read."""


def check_statements(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse the whole text unless every statement in it only reads."""
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyViolation(str(exc).splitlines()[0]) from None
    for statement in statements:
        if statement.type in ALLOWED:
            continue
        if statement.type == duckdb.StatementType.EXPLAIN and _explains_a_select(conn, statement):
            continue
        kind = str(statement.type).rsplit(".", 1)[-1]
        raise ReadOnlyViolation(
            f"pfo sql only reads: a {kind} statement is refused "
            f"({statement.query.strip()[:80]!r}); use SELECT, SHOW, DESCRIBE, SUMMARIZE or EXPLAIN"
        )


def _explains_a_select(conn: duckdb.DuckDBPyConnection, statement: object) -> bool:
    text = str(getattr(statement, "query", "")).strip()
    words = text.split(None, 2)
    rest = " ".join(words[1:])
    if rest.upper().startswith("ANALYZE "):
        rest = rest[len("ANALYZE ") :]
    try:
        inner = conn.extract_statements(rest)
    except duckdb.Error:
        return False
    return len(inner) == 1 and inner[0].type in ALLOWED


def lock_down(conn: duckdb.DuckDBPyConnection, location: LakeLocation) -> None:
    """No file access but the lake's data files, and no setting can change after this."""
    data_path = location.resolved().data_path
    quoted = data_path.replace("'", "''")
    conn.execute(f"SET allowed_directories = ['{quoted}']")
    for setting in SETTINGS_LOCKED_LAST:
        value = "false" if setting == "enable_external_access" else "true"
        conn.execute(f"SET {setting} = {value}")
