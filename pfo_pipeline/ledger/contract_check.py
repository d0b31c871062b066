"""Run a record's SQL contract (`contract_sql`) on stored rows, in one scan inside DuckDB."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pfo_pipeline.ledger.contract_sql import Contract, RowRule

MAX_REPORTED_CHECKS = 20
# Stored types that hold a record's type: JSON is text DuckDB has checked to be JSON.
STORED_AS = {"VARCHAR": frozenset({"VARCHAR", "JSON"})}


@dataclass(frozen=True)
class ContractResult:
    rows: int
    failing_rows: int
    failed_checks: list[str]

    @property
    def passed(self) -> bool:
        return not self.failed_checks


def _relation_parts(relation: str) -> tuple[str, str]:
    schema, _, table = relation.rpartition(".")
    return schema, table


def _type_failures(conn: duckdb.DuckDBPyConnection, relation: str, contract: Contract) -> list[str]:
    """Columns missing or stored with another type: the table itself breaks the contract."""
    schema, table = _relation_parts(relation)
    stored = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = $schema "
            "AND table_name = $table",
            {"schema": schema, "table": table},
        ).fetchall()
    )
    failures = []
    for column, expected in contract.column_types.items():
        found = stored.get(column)
        if found is None:
            failures.append(f"{column}: missing")
        elif found not in STORED_AS.get(expected, {expected}):
            failures.append(f"{column}: stored as {found}, the record says {expected}")
    return failures


def _passes(rule: RowRule) -> str:
    return f"coalesce(({rule.passes}), false)"


def breaks_contract(contract: Contract) -> str:
    """A SQL predicate true for a row that breaks any of the contract's row rules."""
    return "NOT (" + (" AND ".join(_passes(rule) for rule in contract.rules) or "true") + ")"


def check_contract(
    conn: duckdb.DuckDBPyConnection, relation: str, contract: Contract, load_id: str | None
) -> ContractResult:
    """Count the rows of `relation` (only `load_id`'s when given) that break `contract`, and name
    the rules they break, in one aggregate; no row leaves DuckDB."""
    where, params = (
        ("", {}) if load_id is None else (" WHERE load_id = $load_id", {"load_id": load_id})
    )
    type_failures = _type_failures(conn, relation, contract)
    if type_failures:
        (rows,) = conn.execute(f"SELECT count(*) FROM {relation}{where}", params).fetchone() or (0,)
        return ContractResult(rows, rows, type_failures[:MAX_REPORTED_CHECKS])
    per_rule = [f"count(*) FILTER (WHERE NOT {_passes(rule)})" for rule in contract.rules]
    duplicates = [f'count("{c}") - count(DISTINCT "{c}")' for c in contract.unique]
    counts = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {breaks_contract(contract)}), "
        + ", ".join([*per_rule, *duplicates] or ["0"])
        + f" FROM {relation}{where}",
        params,
    ).fetchone()
    assert counts is not None
    rows, failing, *broken = counts
    failed = [
        f"{rule.where}: failed {rule.check}"
        for rule, count in zip(contract.rules, broken[: len(contract.rules)], strict=True)
        if count
    ]
    failed += [
        f"{column}: {count} duplicate value(s)"
        for column, count in zip(contract.unique, broken[len(contract.rules) :], strict=True)
        if count
    ]
    return ContractResult(rows, failing, failed[:MAX_REPORTED_CHECKS])
