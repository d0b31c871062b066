"""Connectors, connections and accounts parsed from Powens JSON, each field through its
scalar parser (`scalars`): a record that breaks a rule raises `PowensParseError` naming the field,
and the sync quarantines that record alone. (Transactions: `transaction_parsing`.)
"""

from __future__ import annotations

from typing import Any

from pfo_pipeline.powens.connection_state import raw_state
from pfo_pipeline.powens.models import PowensAccount, PowensConnection, PowensConnector
from pfo_pipeline.powens.scalars import (
    parse_bool,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_int,
    parse_money,
    parse_str,
    require_mapping,
)


def parse_connector(raw: Any) -> PowensConnector:
    raw = require_mapping(raw, "connector")
    urls = raw.get("urls")  # S3: a list of the bank's websites; older payloads: {"logo": …}
    logo = None
    if isinstance(urls, dict):
        logo = urls.get("logo") if isinstance(urls.get("logo"), str) else None
    return PowensConnector(
        id=parse_int(raw.get("id"), "id", required=False),
        uuid=parse_str(raw.get("uuid"), "uuid"),
        name=parse_str(raw.get("name"), "name"),
        logo_url=logo,
    )


def parse_connection(raw: Any) -> PowensConnection:
    raw = require_mapping(raw, "connection")
    connector = raw.get("connector")
    return PowensConnection(
        id=parse_int(raw.get("id"), "id"),  # type: ignore[arg-type]
        id_user=parse_int(raw.get("id_user"), "id_user", required=False),
        id_connector=parse_int(raw.get("id_connector"), "id_connector", required=False),
        state=parse_str(raw_state(raw), "state"),
        last_update=parse_datetime(raw.get("last_update"), "last_update"),
        expire=parse_datetime(raw.get("expire"), "expire"),
        active=parse_bool(raw.get("active"), "active", default=True),
        connector=parse_connector(connector) if isinstance(connector, dict) else None,
        error_message=parse_str(raw.get("error_message"), "error_message"),
    )


def parse_account(raw: Any) -> PowensAccount:
    raw = require_mapping(raw, "account")
    loan = raw.get("loan")
    return PowensAccount(
        id=parse_int(raw.get("id"), "id"),  # type: ignore[arg-type]
        id_connection=parse_int(raw.get("id_connection"), "id_connection", required=False),
        id_user=parse_int(raw.get("id_user"), "id_user", required=False),
        id_parent=parse_int(raw.get("id_parent"), "id_parent", required=False),
        type=parse_str(raw.get("type"), "type"),
        name=parse_str(raw.get("name"), "name"),
        original_name=parse_str(raw.get("original_name"), "original_name"),
        balance=parse_money(raw.get("balance"), "balance"),
        coming=parse_money(raw.get("coming"), "coming"),
        currency=parse_currency(raw.get("currency"), "currency"),
        usage=parse_str(raw.get("usage"), "usage"),
        ownership=parse_str(raw.get("ownership"), "ownership"),
        company_name=parse_str(raw.get("company_name"), "company_name"),
        opening_date=parse_date(raw.get("opening_date"), "opening_date"),
        last_update=parse_datetime(raw.get("last_update"), "last_update"),
        deleted=parse_datetime(raw.get("deleted"), "deleted"),
        disabled=parse_datetime(raw.get("disabled"), "disabled"),
        error=parse_str(raw.get("error"), "error"),
        loan=loan if isinstance(loan, dict) else None,
        number=parse_str(raw.get("number"), "number"),
        iban=parse_str(raw.get("iban"), "iban"),
        bic=parse_str(raw.get("bic"), "bic"),
    )
