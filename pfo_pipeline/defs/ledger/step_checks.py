"""Checks computed from the table a ledger sync just wrote, reported by the sync's own step
(`check_specs` on the asset): the Pandera contract (blocking) and unique ids.

The contract runs inside DuckDB, as SQL translated from the Pandera records (`contract_sql`): no
row leaves the lake for the check, so a million-row load costs one scan, not a pandas copy.

Unique ids cover the whole table, every tenant's rows: the ledger is shared, and a duplicate
anywhere fails the check (one SQL aggregate). After a transactions sync the contract reads the
rows that load wrote (every other row was checked by the load that wrote it). Run alone (the
check selected without its asset), it reads every row. The checks run on the sync's connection,
right after its load.
"""

import dagster as dg
import duckdb
import pandera.pandas as pa

from pfo_pipeline.ledger.contract_check import check_contract, count_duplicates
from pfo_pipeline.ledger.contract_sql import contract_of
from pfo_pipeline.ledger.records import (
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
)

MODELS: dict[str, type[pa.DataFrameModel]] = {
    "bank_accounts": BankAccountRecord,
    "bank_transactions": BankTransactionRecord,
    "account_balances": AccountBalanceRecord,
}
# Tables whose contract check reads only the rows of the load just committed (see above).
CHECKED_BY_LOAD = frozenset({"bank_transactions"})
UNIQUE_IDS_DESCRIPTIONS = {
    "bank_accounts": "No duplicate canonical account ids.",
    "bank_transactions": "No duplicate canonical ids, and no Powens id twice for one connection.",
    "account_balances": "One snapshot per account, type and day.",
}


def step_check_specs(table: str) -> list[dg.AssetCheckSpec]:
    """The checks the sync of `table` (the asset of that name) reports from its step."""
    return [
        dg.AssetCheckSpec(
            f"{table}_schema",
            asset=table,
            blocking=True,
            description=(
                f"The rows the sync wrote match {MODELS[table].__name__} (run alone: every row)."
                if table in CHECKED_BY_LOAD
                else f"Rows match {MODELS[table].__name__}."
            ),
        ),
        dg.AssetCheckSpec(
            f"{table}_unique_ids", asset=table, description=UNIQUE_IDS_DESCRIPTIONS[table]
        ),
    ]


def step_check_results(
    conn: duckdb.DuckDBPyConnection, table: str, load_id: str | None = None
) -> list[dg.AssetCheckResult]:
    """The results of `step_check_specs(table)`, computed on `conn`; `load_id` is the load the
    step just committed (None: the check runs alone, on every row)."""
    scope = load_id if table in CHECKED_BY_LOAD else None
    return [_schema_check(conn, table, scope), _unique_ids_check(conn, table)]


def _schema_check(
    conn: duckdb.DuckDBPyConnection, table: str, load_id: str | None
) -> dg.AssetCheckResult:
    scope = {"rows_of": "this load" if load_id else "the whole table"}
    result = check_contract(conn, f"ledger.{table}", contract_of(MODELS[table]), load_id)
    metadata: dict[str, object] = {"rows": result.rows, **scope}
    if not result.passed:
        metadata |= {"failing_rows": result.failing_rows, "failed_checks": result.failed_checks}
    return dg.AssetCheckResult(
        check_name=f"{table}_schema", passed=result.passed, metadata=metadata
    )


def _duplicates(conn: duckdb.DuckDBPyConnection, table: str, key: str) -> tuple[int, int]:
    """(rows, rows beyond the first of each `key`)."""
    return count_duplicates(conn, f"ledger.{table}", key)


def _unique_ids_check(conn: duckdb.DuckDBPyConnection, table: str) -> dg.AssetCheckResult:
    name = f"{table}_unique_ids"
    if table == "bank_transactions":
        rows, by_id = _duplicates(conn, table, "id")
        _, by_powens_id = _duplicates(conn, table, "(tenant_id, connection_id, external_id)")
        return dg.AssetCheckResult(
            check_name=name,
            passed=by_id == by_powens_id == 0,
            metadata={
                "rows": rows,
                "duplicate_ids": by_id,
                "duplicate_powens_ids": by_powens_id,
            },
        )
    key = "(account_id, balance_type, as_of_date)" if table == "account_balances" else "id"
    rows, duplicates = _duplicates(conn, table, key)
    return dg.AssetCheckResult(
        check_name=name, passed=duplicates == 0, metadata={"rows": rows, "duplicates": duplicates}
    )
