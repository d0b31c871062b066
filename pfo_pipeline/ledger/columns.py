"""The ledger tables' columns as the loads write them, and the content hash that tells a changed
row from an unchanged one (a re-run with no upstream change rewrites nothing)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from pfo_pipeline.ledger.records import (
    VALIDATION_ONLY,
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
    record_columns,
)

TRANSACTION_COLUMNS = [c for c in record_columns(BankTransactionRecord) if c not in VALIDATION_ONLY]
# What Powens owns: a change in any of these is an upstream edit worth a new version of the row.
# (Categories are ours: rules, transfers and user overrides change them, not Powens.)
TRANSACTION_HASHED = [
    c
    for c in TRANSACTION_COLUMNS
    if c not in ("id", "tenant_id", "connection_id", "external_id", "standardized_category")
    and c not in ("category_source", "booked_at")
]
ACCOUNT_COLUMNS = record_columns(BankAccountRecord)
BALANCE_COLUMNS = record_columns(AccountBalanceRecord)


def content_hash_sql(columns: list[str]) -> str:
    """The SQL of a row's content hash over `columns` (NULL and '' told apart)."""
    parts = ", ".join(f"coalesce(CAST({c} AS VARCHAR), '\\N')" for c in columns)
    return f"md5(concat_ws('|', {parts}))"


def arrow_of(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    """A validated frame's columns as an Arrow table, for SQL to read (`lake.registered`)."""
    return pa.Table.from_pandas(frame[columns], preserve_index=False)
