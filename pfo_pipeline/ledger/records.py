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

from pfo_pipeline.ledger.currencies import ISO_4217_CODES, LEDGER_CURRENCIES

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

_CURRENCY = {"isin": sorted(LEDGER_CURRENCIES)}  # `XXX`: Powens sent no currency (currencies.py)
_NON_EMPTY = {"str_length": {"min_value": 1}}


class _Config:
    strict = "filter"  # extra columns (e.g. lineage helpers) are dropped, never silently stored
    coerce = False


class BankAccountRecord(pa.DataFrameModel):
    """Canonical bank account (docs/spec.md §4)."""

    id: Series[TEXT] = pa.Field(
        unique=True,
        **_NON_EMPTY,
        description="Stable account key: tenant, connection and Powens' id; survives Powens renumbering.",
    )
    tenant_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The family (tenant) the account belongs to."
    )
    user_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The Powens user the tenant maps to."
    )
    connection_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The Powens connection (bank link) that serves the account."
    )
    external_id: Series[TEXT] = pa.Field(**_NON_EMPTY, description="Powens' own account id.")
    institution_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="Powens connector id of the bank."
    )
    institution_name: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The bank's name as Powens lists it."
    )
    institution_logo_url: Series[TEXT] = pa.Field(
        nullable=True, description="The bank's logo URL, when Powens gives one."
    )
    iban: Series[TEXT] = pa.Field(
        nullable=True, description="IBAN (PII: never leaves the ledger schema)."
    )
    bic: Series[TEXT] = pa.Field(nullable=True, description="BIC of the bank.")
    account_type: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="Powens account type (checking, savings, card, loan, ...)."
    )
    currency: Series[TEXT] = pa.Field(**_CURRENCY, description="ISO 4217 currency of the account.")
    display_name: Series[TEXT] = pa.Field(
        **_NON_EMPTY,
        description="The account's name at the bank (PII: never leaves the ledger schema).",
    )
    account_number_masked: Series[TEXT] = pa.Field(
        nullable=True, description="Account number as Powens masks it (PII: ledger schema only)."
    )
    product_code: Series[TEXT] = pa.Field(
        nullable=True, description="The bank's product code, when given."
    )
    balance: Series[MONEY] = pa.Field(
        nullable=True, description="Balance at the last sync, in the account's currency."
    )  # type: ignore[valid-type]
    available_balance: Series[MONEY] = pa.Field(
        nullable=True, description="Available balance at the last sync, when the bank gives one."
    )  # type: ignore[valid-type]
    ownership: Series[TEXT] = pa.Field(
        isin=OWNERSHIPS,
        description="Who holds the account: individual, joint, business or unknown.",
    )
    status: Series[TEXT] = pa.Field(
        isin=ACCOUNT_STATUSES, description="active, inactive, closed or suspended."
    )
    parent_account_id: Series[TEXT] = pa.Field(
        nullable=True, description="The account a card is attached to, when Powens says."
    )
    last_synced_at: Series[PROVIDER_TS] = pa.Field(
        nullable=True,
        description="When Powens last refreshed the account (Powens' Europe/Paris clock).",
    )  # type: ignore[valid-type]
    metadata: Series[TEXT] = pa.Field(
        nullable=True, description="Powens fields kept as JSON for lineage."
    )

    Config = _Config


class BankTransactionRecord(pa.DataFrameModel):
    """Canonical transaction (docs/spec.md §4), with its lineage columns (docs/spec.md §4; why they exist: §5)."""

    id: Series[TEXT] = pa.Field(
        unique=True,
        **_NON_EMPTY,
        description="Stable transaction key: tenant, connection and Powens' id.",
    )
    account_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The ledger account (bank_accounts.id)."
    )
    tenant_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The family (tenant) the transaction belongs to."
    )
    connection_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The Powens connection that served it."
    )
    external_id: Series[TEXT] = pa.Field(**_NON_EMPTY, description="Powens' own transaction id.")
    amount: Series[MONEY] = pa.Field(
        description="Signed amount in the account's currency: negative for money out."
    )  # type: ignore[valid-type]
    currency: Series[TEXT] = pa.Field(**_CURRENCY, description="ISO 4217 currency of the amount.")
    direction: Series[TEXT] = pa.Field(
        isin=DIRECTIONS,
        description="debit (money out) or credit (money in), matching the amount's sign.",
    )
    date: Series[DAY] = pa.Field(description="The day the transaction counts for (Powens' date).")  # type: ignore[valid-type]
    booking_date: Series[DAY] = pa.Field(
        description="The bank's own date (Powens bdate), or the date when it gives none."
    )  # type: ignore[valid-type]
    value_date: Series[DAY] = pa.Field(
        nullable=True, description="The value date, when the bank gives one."
    )  # type: ignore[valid-type]
    description: Series[TEXT] = pa.Field(
        nullable=True, description="The bank's wording (PII: never leaves the ledger schema)."
    )
    counterparty_name: Series[TEXT] = pa.Field(
        nullable=True, description="Who was paid or paid (PII: never leaves the ledger schema)."
    )
    counterparty_account: Series[TEXT] = pa.Field(
        nullable=True, description="The counterparty's IBAN or account (PII: ledger schema only)."
    )
    merchant_category_code: Series[TEXT] = pa.Field(
        nullable=True, description="Card merchant category code (MCC), when given."
    )
    raw_category: Series[TEXT] = pa.Field(
        nullable=True, description="Powens' own category, when given."
    )
    standardized_category: Series[TEXT] = pa.Field(
        **_NON_EMPTY,
        description="Category in the fixed taxonomy (rules, provider, transfer or user).",
    )
    category_source: Series[TEXT] = pa.Field(
        isin=["rule", "provider", "transfer", "user"],
        description="What set the category: rule, provider, transfer or user override.",
    )
    transaction_type: Series[TEXT] = pa.Field(
        **_NON_EMPTY,
        description="Powens transaction type (card, transfer, loan_payment, bank, ..., open set).",
    )
    status: Series[TEXT] = pa.Field(
        isin=TRANSACTION_STATUSES, description="pending (coming), booked or cancelled."
    )
    running_balance: Series[MONEY] = pa.Field(
        nullable=True,
        description="The account balance after this transaction, when Powens gives one.",
    )  # type: ignore[valid-type]
    metadata: Series[TEXT] = pa.Field(
        nullable=True,
        description="Powens fields kept as JSON for lineage (e.g. original amount and currency).",
    )
    provider_updated_at: Series[PROVIDER_TS] = pa.Field(
        nullable=True, description="Powens' last_update of the row: the incremental cursor's clock."
    )  # type: ignore[valid-type]
    booked_at: Series[PROVIDER_TS] = pa.Field(
        nullable=True,
        description="Powens' last_update of the row once it is booked (null while pending).",
    )  # type: ignore[valid-type]
    deleted_at: Series[PROVIDER_TS] = pa.Field(
        nullable=True,
        description="When Powens deleted the row; set exactly when status is cancelled.",
    )  # type: ignore[valid-type]
    original_currency: Series[TEXT] = pa.Field(
        nullable=True,
        isin=CURRENCIES,
        description="Currency of the original amount for foreign payments (validated only).",
    )

    Config = _Config

    # Each dataframe check carries its SQL twin: the contract check on stored rows runs it in
    # DuckDB (contract_sql.py); tests prove the twins agree with these functions.
    @pa.dataframe_check(
        element_wise=False,
        error="direction must match the sign of amount",
        statistics={"sql": "(direction = 'debit') = (amount < 0)"},
    )
    def direction_matches_sign(cls, df: pd.DataFrame) -> Series[bool]:
        negative = df["amount"] < 0
        return (df["direction"] == "debit") == negative

    @pa.dataframe_check(
        error="status must be cancelled exactly when deleted_at is set",
        statistics={"sql": "(status = 'cancelled') = (deleted_at IS NOT NULL)"},
    )
    def cancelled_iff_deleted(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["status"] == "cancelled") == df["deleted_at"].notna()


class AccountBalanceRecord(pa.DataFrameModel):
    """One balance snapshot per account, balance type and day (docs/spec.md §4)."""

    id: Series[TEXT] = pa.Field(
        unique=True, **_NON_EMPTY, description="Stable key: account, balance type and day."
    )
    account_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The ledger account (bank_accounts.id)."
    )
    tenant_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The family (tenant) the balance belongs to."
    )
    connection_id: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="The Powens connection that served it."
    )
    balance_type: Series[TEXT] = pa.Field(
        **_NON_EMPTY, description="Which balance: current (more types when Powens gives them)."
    )
    current_balance: Series[MONEY] = pa.Field(
        description="The balance on that day, in the account's currency."
    )  # type: ignore[valid-type]
    available_balance: Series[MONEY] = pa.Field(
        nullable=True, description="The available balance, when the bank gives one."
    )  # type: ignore[valid-type]
    currency: Series[TEXT] = pa.Field(**_CURRENCY, description="ISO 4217 currency of the balance.")
    last_updated_at: Series[PROVIDER_TS] = pa.Field(
        nullable=True, description="When Powens last refreshed the balance (Powens' clock)."
    )  # type: ignore[valid-type]
    as_of_date: Series[DAY] = pa.Field(description="The day the snapshot is for.")  # type: ignore[valid-type]
    metadata: Series[TEXT] = pa.Field(
        nullable=True, description="Powens fields kept as JSON for lineage."
    )

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
