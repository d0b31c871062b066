"""The Pandera records as SQL, so a contract check runs inside DuckDB on the stored rows.

Why not Pandera itself on the stored rows: its pandas backend needs the rows in pandas (a
million-row load held twice in memory, seconds of conversion), and its Ibis backend needs a second
set of models written for Ibis and a 3 s import in every run. Instead the one source of truth stays
the `DataFrameModel`s in `records.py`, and this module translates them (the same SQL screens
each batch at the door, `validation.py`): each column's dtype,
nullability, uniqueness and built-in checks (`isin`, `str_length`, comparisons), and each
dataframe-level check through the SQL twin it declares in its `statistics` (`{"sql": ...}`). A
check this module cannot translate raises `ContractTranslationError` when the rules are built, so
a new check never passes unchecked; `tests/ledger/test_contract_sql.py` proves the SQL agrees
with Pandera on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow

from pfo_pipeline.ledger.records import VALIDATION_ONLY


class ContractTranslationError(ValueError):
    """A Pandera check with no SQL translation: declare one before the check can guard the lake."""


@dataclass(frozen=True)
class RowRule:
    """One row-level rule: `passes` is a SQL predicate true for a conforming row."""

    where: str  # the column, or "record" for a dataframe-level check
    check: str
    passes: str


@dataclass(frozen=True)
class Contract:
    """A record's contract as SQL: column types, row rules and unique keys."""

    column_types: dict[str, str]  # column -> DuckDB type name
    rules: tuple[RowRule, ...]
    unique: tuple[str, ...]


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ContractTranslationError(f"no SQL literal for {value!r}")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _duckdb_type(dtype: object) -> str:
    """The DuckDB type DuckDB itself gives an Arrow column of this Pandera dtype."""
    pandas_dtype = getattr(dtype, "type", None)
    if isinstance(pandas_dtype, pd.StringDtype):
        return "VARCHAR"
    arrow_type = getattr(pandas_dtype, "pyarrow_dtype", None)
    if not isinstance(arrow_type, pa_arrow.DataType):
        raise ContractTranslationError(f"{dtype} is not an Arrow-backed dtype")
    empty = pa_arrow.table({"c": pa_arrow.array([], type=arrow_type)})
    return str(duckdb.from_arrow(empty).types[0])


def _field_check(column: str, check: pa.Check) -> str:
    """The predicate of a built-in field check, on a non-null value."""
    stats = check.statistics or {}
    col = _identifier(column)
    if check.name == "isin":
        values = ", ".join(_literal(v) for v in stats["allowed_values"])
        return f"{col} IN ({values})"
    if check.name == "str_length":
        parts = []
        if stats.get("exact_value") is not None:
            parts.append(f"length({col}) = {int(stats['exact_value'])}")
        if stats.get("min_value") is not None:
            parts.append(f"length({col}) >= {int(stats['min_value'])}")
        if stats.get("max_value") is not None:
            parts.append(f"length({col}) <= {int(stats['max_value'])}")
        return " AND ".join(parts) or "true"
    comparisons = {
        "greater_than": ">",
        "greater_than_or_equal_to": ">=",
        "less_than": "<",
        "less_than_or_equal_to": "<=",
        "equal_to": "=",
        "not_equal_to": "<>",
    }
    if check.name in comparisons and len(stats) == 1:
        (value,) = stats.values()
        return f"{col} {comparisons[check.name]} {_literal(value)}"
    raise ContractTranslationError(f"{column}: no SQL for Pandera check {check.name!r}")


@cache
def contract_of(model: type[pa.DataFrameModel], *, stored_only: bool = True) -> Contract:
    """Translate `model` once; raises `ContractTranslationError` for anything left untranslated.
    `stored_only=False` keeps the columns validated at the door but not stored (a batch's
    screen, `validation.py`)."""
    schema = model.to_schema()
    types: dict[str, str] = {}
    rules: list[RowRule] = []
    unique: list[str] = []
    for name, column in schema.columns.items():
        if stored_only and name in VALIDATION_ONLY:  # stored inside `metadata`
            continue
        col = _identifier(name)
        types[name] = _duckdb_type(column.dtype)
        if not column.nullable:
            rules.append(RowRule(name, "not_nullable", f"{col} IS NOT NULL"))
        for check in column.checks:
            rules.append(
                RowRule(name, check.name, f"{col} IS NULL OR ({_field_check(name, check)})")
            )
        if column.unique:
            unique.append(name)
    for check in schema.checks:
        sql = (check.statistics or {}).get("sql")
        if not sql:
            raise ContractTranslationError(
                f"{model.__name__}.{check.name}: declare its SQL twin, "
                "`@pa.dataframe_check(statistics={'sql': ...})`"
            )
        rules.append(RowRule("record", check.name, sql))
    return Contract(types, tuple(rules), tuple(unique))
