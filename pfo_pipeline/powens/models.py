"""The records the Powens client returns, typed: connectors, connections, accounts and
transactions as the pipeline reads them (docs/powens-api.md, facts §1-§4, §8). Built from JSON by
`record_parsing` (connectors, connections, accounts) and `transaction_parsing` (the hot path),
field by field through the rules of `scalars`. Sensitive fields stay out of each record's `repr`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Currency:
    id: str
    precision: int | None = None
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class PowensConnector:
    id: int | None
    uuid: str | None
    name: str | None
    logo_url: str | None


@dataclass(frozen=True, slots=True)
class PowensConnection:
    id: int
    id_user: int | None
    id_connector: int | None
    state: str | None
    last_update: datetime | None
    expire: datetime | None
    active: bool
    connector: PowensConnector | None
    error_message: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PowensAccount:
    id: int
    id_connection: int | None
    id_user: int | None
    id_parent: int | None
    type: str | None
    name: str | None
    original_name: str | None
    balance: Decimal | None
    coming: Decimal | None
    currency: Currency | None
    usage: str | None
    ownership: str | None
    company_name: str | None
    opening_date: date | None
    last_update: datetime | None
    deleted: datetime | None
    disabled: datetime | None
    error: str | None
    loan: dict[str, Any] | None = field(default=None, repr=False)
    number: str | None = field(default=None, repr=False)
    iban: str | None = field(default=None, repr=False)
    bic: str | None = field(default=None, repr=False)


# Not frozen: a frozen dataclass's __init__ sets each of the 27 fields through object.__setattr__,
# 7 us a row, 7 s of a million-row sync. Nothing downstream mutates a parsed transaction.
@dataclass(slots=True)
class PowensTransaction:
    id: int
    id_account: int
    date: date
    rdate: date | None
    vdate: date | None
    bdate: date | None
    application_date: date | None
    date_scraped: datetime | None
    last_update: datetime | None
    deleted: datetime | None
    value: Decimal
    original_value: Decimal | None
    original_currency: Currency | None
    type: str | None
    coming: bool
    active: bool
    categories: tuple[str, ...]
    id_category: int | None
    wording: str | None = field(default=None, repr=False)
    simplified_wording: str | None = field(default=None, repr=False)
    original_wording: str | None = field(default=None, repr=False)
    counterparty_label: str | None = field(default=None, repr=False)
    counterparty_account: str | None = field(default=None, repr=False)
    counterparty_type: str | None = None
    card: str | None = field(default=None, repr=False)
