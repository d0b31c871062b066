"""The three canonical records as Pandera `DataFrameModel`s: the contract at the ledger's door.

Frames are validated once per batch (`lazy=True` so every failing row is found in one pass); failing
rows go to quarantine with the reasons Pandera gives, the rest load.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
from pandera.typing import Series

from pfo_pipeline.ledger.currencies import ISO_4217_CODES

MONEY = pd.ArrowDtype(pa_arrow.decimal128(18, 2))
DAY = pd.ArrowDtype(pa_arrow.date32())
PROVIDER_TS = pd.ArrowDtype(pa_arrow.timestamp("us"))  # naive Powens (Europe/Paris) wall-clock
OWN_TS = pd.ArrowDtype(pa_arrow.timestamp("us", tz="UTC"))  # our own clock
# Arrow-backed text: Pandera checks its dtype once per column instead of once per value.
TEXT = pd.StringDtype("pyarrow")

OWNERSHIPS = ["individual", "joint", "business", "unknown"]
ACCOUNT_STATUSES = ["active", "inactive", "closed", "suspended"]
DIRECTIONS = ["debit", "credit"]
TRANSACTION_STATUSES = ["pending", "booked", "cancelled"]
CURRENCIES = sorted(ISO_4217_CODES)

_CURRENCY = {"isin": CURRENCIES}
_NON_EMPTY = {"str_length": {"min_value": 1}}


class _Config:
    strict = "filter"  # extra columns (e.g. lineage helpers) are dropped, never silently stored
    coerce = False


class BankAccountRecord(pa.DataFrameModel):
    """Canonical bank account (SPEC §4)."""

    id: Series[TEXT] = pa.Field(unique=True, **_NON_EMPTY)
    tenant_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    user_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    connection_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    external_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    institution_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    institution_name: Series[TEXT] = pa.Field(**_NON_EMPTY)
    institution_logo_url: Series[TEXT] = pa.Field(nullable=True)
    iban: Series[TEXT] = pa.Field(nullable=True)
    bic: Series[TEXT] = pa.Field(nullable=True)
    account_type: Series[TEXT] = pa.Field(**_NON_EMPTY)
    currency: Series[TEXT] = pa.Field(**_CURRENCY)
    display_name: Series[TEXT] = pa.Field(**_NON_EMPTY)
    account_number_masked: Series[TEXT] = pa.Field(nullable=True)
    product_code: Series[TEXT] = pa.Field(nullable=True)
    balance: Series[MONEY] = pa.Field(nullable=True)  # type: ignore[valid-type]
    available_balance: Series[MONEY] = pa.Field(nullable=True)  # type: ignore[valid-type]
    ownership: Series[TEXT] = pa.Field(isin=OWNERSHIPS)
    status: Series[TEXT] = pa.Field(isin=ACCOUNT_STATUSES)
    parent_account_id: Series[TEXT] = pa.Field(nullable=True)
    last_synced_at: Series[PROVIDER_TS] = pa.Field(nullable=True)  # type: ignore[valid-type]
    metadata: Series[TEXT] = pa.Field(nullable=True)

    Config = _Config


class BankTransactionRecord(pa.DataFrameModel):
    """Canonical transaction (SPEC §4), with the lineage columns of SPEC §5."""

    id: Series[TEXT] = pa.Field(unique=True, **_NON_EMPTY)
    account_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    tenant_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    connection_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    external_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    amount: Series[MONEY]  # type: ignore[valid-type]
    currency: Series[TEXT] = pa.Field(**_CURRENCY)
    direction: Series[TEXT] = pa.Field(isin=DIRECTIONS)
    date: Series[DAY]  # type: ignore[valid-type]
    booking_date: Series[DAY]  # type: ignore[valid-type]
    value_date: Series[DAY] = pa.Field(nullable=True)  # type: ignore[valid-type]
    description: Series[TEXT] = pa.Field(nullable=True)
    counterparty_name: Series[TEXT] = pa.Field(nullable=True)
    counterparty_account: Series[TEXT] = pa.Field(nullable=True)
    merchant_category_code: Series[TEXT] = pa.Field(nullable=True)
    raw_category: Series[TEXT] = pa.Field(nullable=True)
    standardized_category: Series[TEXT] = pa.Field(**_NON_EMPTY)
    category_source: Series[TEXT] = pa.Field(isin=["rule", "provider", "transfer", "user"])
    transaction_type: Series[TEXT] = pa.Field(**_NON_EMPTY)
    status: Series[TEXT] = pa.Field(isin=TRANSACTION_STATUSES)
    running_balance: Series[MONEY] = pa.Field(nullable=True)  # type: ignore[valid-type]
    metadata: Series[TEXT] = pa.Field(nullable=True)
    provider_updated_at: Series[PROVIDER_TS] = pa.Field(nullable=True)  # type: ignore[valid-type]
    booked_at: Series[PROVIDER_TS] = pa.Field(nullable=True)  # type: ignore[valid-type]
    deleted_at: Series[PROVIDER_TS] = pa.Field(nullable=True)  # type: ignore[valid-type]
    original_currency: Series[TEXT] = pa.Field(nullable=True, isin=CURRENCIES)

    Config = _Config

    @pa.dataframe_check(element_wise=False, error="direction must match the sign of amount")
    def direction_matches_sign(cls, df: pd.DataFrame) -> Series[bool]:
        negative = df["amount"] < 0
        return (df["direction"] == "debit") == negative

    @pa.dataframe_check(error="status must be cancelled exactly when deleted_at is set")
    def cancelled_iff_deleted(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["status"] == "cancelled") == df["deleted_at"].notna()


class AccountBalanceRecord(pa.DataFrameModel):
    """One balance snapshot per account, balance type and day (SPEC §4)."""

    id: Series[TEXT] = pa.Field(unique=True, **_NON_EMPTY)
    account_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    tenant_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    connection_id: Series[TEXT] = pa.Field(**_NON_EMPTY)
    balance_type: Series[TEXT] = pa.Field(**_NON_EMPTY)
    current_balance: Series[MONEY]  # type: ignore[valid-type]
    available_balance: Series[MONEY] = pa.Field(nullable=True)  # type: ignore[valid-type]
    currency: Series[TEXT] = pa.Field(**_CURRENCY)
    last_updated_at: Series[PROVIDER_TS] = pa.Field(nullable=True)  # type: ignore[valid-type]
    as_of_date: Series[DAY]  # type: ignore[valid-type]
    metadata: Series[TEXT] = pa.Field(nullable=True)

    Config = _Config


# Columns validated at the door but not stored as such (they end up in `metadata`).
VALIDATION_ONLY = frozenset({"original_currency"})


def record_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """The record's columns in declaration order: the one list the mapping and the ledger share."""
    return list(model.to_schema().columns)


def failing_rows(errors: pa.errors.SchemaErrors) -> dict[Any, list[str]]:
    """Row index -> readable reasons, from one lazy validation. Column-level failures (no row
    index) mean the mapping itself is wrong: re-raise rather than quarantine everything."""
    cases = errors.failure_cases
    reasons: dict[Any, list[str]] = {}
    for column, check, index in zip(cases["column"], cases["check"], cases["index"], strict=True):
        if index is None or (isinstance(index, float) and pd.isna(index)):
            raise errors
        where = column if isinstance(column, str) and column else "record"
        reasons.setdefault(index, []).append(f"{where}: failed {check}")
    return reasons
