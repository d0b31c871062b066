"""Checks computed from the table a ledger sync just wrote, reported by the sync's own step
(`check_specs` on the asset): the Pandera contract (blocking) and unique ids.

Unique ids cover the whole table, every tenant's rows: the ledger is shared, and a duplicate
anywhere fails the check (one SQL aggregate). The contract reads rows into pandas, so after a
transactions sync it reads the rows that load wrote (every other row was checked by the load that
wrote it): on a million-row ledger a whole-table read cost seconds and hundreds of MB a sync.
Run alone (the check selected without its asset), it reads every row. The checks run on the
sync's connection, right after its load.
"""

import dagster as dg
import duckdb
import pandas as pd
import pandera.pandas as pa

from pfo_pipeline.ledger.records import (
    TEXT,
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
    failing_rows,
    record_columns,
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


def _read_frame(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    model: type[pa.DataFrameModel],
    load_id: str | None,
) -> pd.DataFrame:
    columns = [c for c in record_columns(model) if c != "original_currency"]
    where = "" if load_id is None else " WHERE load_id = $load_id"
    params = {} if load_id is None else {"load_id": load_id}
    arrow = conn.execute(
        f"SELECT {', '.join(columns)} FROM ledger.{table}{where}", params
    ).fetch_arrow_table()
    frame = arrow.to_pandas(types_mapper=pd.ArrowDtype)
    for name in frame.columns:  # Arrow strings as the records' text dtype
        if str(frame[name].dtype).startswith(("string", "large_string")):
            frame[name] = frame[name].astype(TEXT)
    if "original_currency" in record_columns(model):
        frame["original_currency"] = pd.Series([None] * len(frame), dtype=TEXT)
    return frame


def _schema_check(
    conn: duckdb.DuckDBPyConnection, table: str, load_id: str | None
) -> dg.AssetCheckResult:
    model = MODELS[table]
    frame = _read_frame(conn, table, model, load_id)
    scope = {"rows_of": "this load" if load_id else "the whole table"}
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        try:
            rows = failing_rows(errors)
            failing, checks = len(rows), sorted({r for v in rows.values() for r in v})[:20]
        except pa.errors.SchemaErrors:
            failing, checks = len(frame), ["column-level failure: dtype or missing column"]
        return dg.AssetCheckResult(
            check_name=f"{table}_schema",
            passed=False,
            metadata={
                "rows": len(frame),
                "failing_rows": failing,
                "failed_checks": checks,
                **scope,
            },
        )
    return dg.AssetCheckResult(
        check_name=f"{table}_schema", passed=True, metadata={"rows": len(frame), **scope}
    )


def _duplicates(conn: duckdb.DuckDBPyConnection, table: str, key: str) -> tuple[int, int]:
    """(rows, rows beyond the first of each `key`)."""
    total, distinct = conn.execute(
        f"SELECT count(*), count(DISTINCT {key}) FROM ledger.{table}"
    ).fetchall()[0]
    return total, total - distinct


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
