"""The SQL contract (run in DuckDB on stored rows) agrees with the Pandera records it is translated
from: the same rows fail, for the same columns, and nothing in a record is left untranslated."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pytest
from pandera.typing import Series

from pfo_pipeline.ledger.contract_check import breaks_contract, check_contract
from pfo_pipeline.ledger.contract_sql import ContractTranslationError, contract_of
from pfo_pipeline.ledger.records import (
    TEXT,
    VALIDATION_ONLY,
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
    record_columns,
)

MODELS = [BankAccountRecord, BankTransactionRecord, AccountBalanceRecord]

GOOD_TRANSACTION: dict[str, Any] = {
    "id": "tx-1",
    "account_id": "acc-1",
    "tenant_id": "tenant.a",
    "connection_id": "7",
    "external_id": "1",
    "amount": Decimal("-12.30"),
    "currency": "EUR",
    "direction": "debit",
    "date": date(2026, 11, 2),
    "booking_date": date(2026, 11, 2),
    "value_date": None,
    "description": "CB SHOP",
    "counterparty_name": None,
    "counterparty_account": None,
    "merchant_category_code": None,
    "raw_category": None,
    "standardized_category": "shopping",
    "category_source": "rule",
    "transaction_type": "card",
    "status": "booked",
    "running_balance": None,
    "metadata": None,
    "provider_updated_at": datetime(2026, 11, 2, 8, 0),
    "booked_at": datetime(2026, 11, 2, 8, 0),
    "deleted_at": None,
    "original_currency": None,
}

# Each breaks one rule (or none): every kind of check the records use, and both dataframe checks.
MUTATIONS: dict[str, dict[str, Any]] = {
    "conforming": {},
    "null required text": {"tenant_id": None},
    "empty required text": {"external_id": ""},
    "currency outside the list": {"currency": "EURO"},
    "lower-case currency": {"currency": "eur"},
    "unknown direction": {"direction": "out"},
    "unknown status": {"status": "settled"},
    "unknown category source": {"category_source": "guess"},
    "null amount": {"amount": None},
    "null date": {"date": None},
    "credit with a negative amount": {"direction": "credit"},
    "zero amount as a debit": {"amount": Decimal("0.00")},
    "cancelled without deleted_at": {"status": "cancelled"},
    "deleted_at on a booked row": {"deleted_at": datetime(2026, 11, 3)},
    "cancelled and deleted": {"status": "cancelled", "deleted_at": datetime(2026, 11, 3)},
    "two broken rules": {"currency": "ZZZ", "direction": "credit"},
}


def frame_of(model: type[pa.DataFrameModel], rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows with the record's own Arrow dtypes, as the mapping builds them."""
    schema = model.to_schema()
    columns = {}
    for name in record_columns(model):
        dtype = schema.columns[name].dtype.type
        arrow_type = pa_arrow.string() if dtype == TEXT else dtype.pyarrow_dtype
        values = pa_arrow.array([row[name] for row in rows], type=arrow_type)
        columns[name] = pd.Series(values.to_pandas(types_mapper=pd.ArrowDtype), dtype=dtype)
    return pd.DataFrame(columns)


def pandera_failures(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> set[int]:
    """Rows Pandera fails. A dataframe check that meets a null (a null amount) fails as a whole,
    without row index: that row is failed by its column's `not_nullable` anyway."""
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return {int(i) for i in errors.failure_cases["index"] if i is not None and not pd.isna(i)}
    return set()


def sql_failures(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> set[int]:
    stored = frame.drop(columns=[c for c in VALIDATION_ONLY if c in frame])
    stored = stored.assign(row_number=range(len(stored)))
    conn = duckdb.connect()
    conn.register("rows", stored)
    query = f"SELECT row_number FROM rows WHERE {breaks_contract(contract_of(model))}"
    return {r[0] for r in conn.execute(query).fetchall()}


def ledger_table(frame: pd.DataFrame, select: str = "*") -> duckdb.DuckDBPyConnection:
    """A DuckDB holding `frame`'s stored columns as `ledger.tx`."""
    conn = duckdb.connect()
    conn.register("frame", frame.drop(columns=[c for c in VALIDATION_ONLY if c in frame]))
    conn.execute("CREATE SCHEMA ledger")
    conn.execute(f"CREATE TABLE ledger.tx AS SELECT {select} FROM frame")
    return conn


def test_every_record_translates_with_a_rule_per_check() -> None:
    for model in MODELS:
        schema = model.to_schema()
        contract = contract_of(model)
        stored = [c for c in schema.columns if c not in VALIDATION_ONLY]
        assert list(contract.column_types) == stored
        expected_rules = sum(
            len(schema.columns[c].checks) + (not schema.columns[c].nullable) for c in stored
        ) + len(schema.checks)
        assert len(contract.rules) == expected_rules
        assert contract.unique == ("id",)


def test_sql_and_pandera_fail_the_same_rows() -> None:
    # A null amount makes Pandera's dataframe checks fail as a whole, hiding the other rows'
    # results: that mutation is compared on its own, below.
    mutations = {k: v for k, v in MUTATIONS.items() if k != "null amount"}
    rows = [
        {**GOOD_TRANSACTION, "id": f"tx-{i}", "external_id": str(i), **change}
        for i, change in enumerate(mutations.values())
    ]
    frame = frame_of(BankTransactionRecord, rows)
    expected = pandera_failures(BankTransactionRecord, frame)
    conforming = {list(mutations).index(k) for k in ("conforming", "cancelled and deleted")}
    assert expected == set(range(len(mutations))) - conforming
    assert sql_failures(BankTransactionRecord, frame) == expected


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_each_broken_rule_is_named_by_its_column(mutation: str) -> None:
    frame = frame_of(BankTransactionRecord, [{**GOOD_TRANSACTION, **MUTATIONS[mutation]}])
    conn = ledger_table(frame)
    result = check_contract(conn, "ledger.tx", contract_of(BankTransactionRecord), None)
    pandera_says = pandera_failures(BankTransactionRecord, frame)
    assert result.rows == 1 and result.failing_rows == len(pandera_says)
    for column in MUTATIONS[mutation]:
        assert any(
            c.startswith(column) or c.startswith("record") for c in result.failed_checks
        ) == (result.failing_rows == 1)


def test_a_column_stored_with_another_type_fails_the_whole_load() -> None:
    frame = frame_of(BankTransactionRecord, [GOOD_TRANSACTION])
    conn = ledger_table(frame, "* REPLACE (amount::DOUBLE AS amount)")
    result = check_contract(conn, "ledger.tx", contract_of(BankTransactionRecord), None)
    assert not result.passed and result.failing_rows == 1
    assert result.failed_checks == ["amount: stored as DOUBLE, the record says DECIMAL(18,2)"]


def test_duplicate_ids_in_the_checked_rows_fail() -> None:
    frame = frame_of(BankTransactionRecord, [GOOD_TRANSACTION, GOOD_TRANSACTION])
    conn = ledger_table(frame)
    result = check_contract(conn, "ledger.tx", contract_of(BankTransactionRecord), None)
    assert not result.passed and result.failed_checks == ["id: 1 duplicate value(s)"]


def test_a_check_without_sql_cannot_guard_the_lake() -> None:
    class Untranslated(pa.DataFrameModel):
        id: Series[TEXT] = pa.Field()

        @pa.dataframe_check
        def something(cls, df: pd.DataFrame) -> Series[bool]:
            return df["id"] != "x"

    class CustomField(pa.DataFrameModel):
        id: Series[TEXT] = pa.Field(str_matches=r"^tx-")

    with pytest.raises(ContractTranslationError, match="SQL twin"):
        contract_of(Untranslated)
    with pytest.raises(ContractTranslationError, match="str_matches"):
        contract_of(CustomField)


@pytest.mark.parametrize("slice_rows", [1_000_000, 7, 1])
def test_duplicates_are_counted_the_same_in_any_number_of_slices(
    slice_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies share a hash, so slicing by hash (bounded memory on a long history) changes no
    count; a key is compared whole only when the hashes show copies."""
    from pfo_pipeline.ledger import contract_check

    monkeypatch.setattr(contract_check, "DISTINCT_SLICE_ROWS", slice_rows)
    conn = duckdb.connect()
    conn.execute(
        "CREATE TABLE t AS SELECT (i % 40)::VARCHAR AS k, i % 2 AS half FROM range(100) r(i)"
    )
    assert contract_check.count_duplicates(conn, "t", "k") == (100, 60)
    assert contract_check.count_duplicates(conn, "t", "k", " WHERE half = $h", {"h": 0}) == (50, 30)
    conn.execute("CREATE TABLE u AS SELECT i::VARCHAR AS k FROM range(100) r(i)")
    assert contract_check.count_duplicates(conn, "u", "k") == (100, 0)
