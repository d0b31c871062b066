"""Mapping rules of docs/spec.md §4 on hand-made Powens payloads (the end-to-end tests use the emulator)."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from pfo_pipeline.ledger.mapping import (
    canonical_id,
    map_accounts,
    map_balances,
    mask_account_number,
    resolve_accounts,
)
from pfo_pipeline.ledger.records import (
    AccountBalanceRecord,
    BankAccountRecord,
    BankTransactionRecord,
)
from pfo_pipeline.ledger.transaction_mapping import map_transactions
from pfo_pipeline.ledger.types import SyncContext
from pfo_pipeline.ledger.validation import validate_batch
from pfo_pipeline.powens.models import PowensConnector
from pfo_pipeline.powens.record_parsing import parse_account
from pfo_pipeline.powens.transaction_parsing import parse_transaction

CTX = SyncContext("tenant.a", "conn-a", "1", "load_x")
IBAN = "FR7630004000031234567890143"


def account(**overrides) -> dict:
    base = {
        "id": 10,
        "id_connection": 7,
        "id_user": 1,
        "type": "checking",
        "name": "Compte chèque",
        "iban": IBAN,
        "number": "00012345678",
        "balance": 1500.25,
        "coming": -20.5,
        "currency": {"id": "EUR", "precision": 2},
        "ownership": "owner",
        "last_update": "2026-11-20 08:00:00",
    }
    return {**base, **overrides}


def no_categories(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(["other"] * len(frame), index=frame.index)


def test_masking_keeps_only_the_last_four() -> None:
    assert mask_account_number("00012345678") == "*******5678"
    assert mask_account_number("1234") == "****"
    assert mask_account_number(None) is None


def test_account_mapping_rules() -> None:
    accounts = [
        parse_account(account()),
        parse_account(
            account(
                id=11,
                iban=None,
                number=None,
                ownership="co-owner",
                type="joint",
                deleted="2026-11-01 10:00:00",
            )
        ),
        parse_account(
            account(
                id=12,
                iban="FR76X",
                number=None,
                disabled="2026-11-02 10:00:00",
                usage="ORGA",
                type=None,
            )
        ),
    ]
    resolution = resolve_accounts(accounts, CTX, {}, {})
    connector = PowensConnector(id=40, uuid="uuid-40", name="Banque Démo", logo_url=None)
    frame = map_accounts(resolution, {7: connector}, CTX).set_index("external_id")
    assert frame.loc["10", "available_balance"] == Decimal("1479.75")
    assert frame.loc["10", "account_number_masked"] == "*******5678"
    assert frame.loc["10", "ownership"] == "individual" and frame.loc["10", "status"] == "active"
    assert frame.loc["11", "ownership"] == "joint" and frame.loc["11", "status"] == "closed"
    assert frame.loc["12", "ownership"] == "business" and frame.loc["12", "status"] == "inactive"
    assert frame.loc["12", "account_type"] == "unknown"
    assert frame.loc["10", "institution_name"] == "Banque Démo"
    assert frame.loc["10", "id"] == canonical_id("acc", "tenant.a", "conn-a", "10")
    valid, rejects = validate_batch(BankAccountRecord, frame.reset_index(), duckdb.connect())
    assert len(valid) == 3 and not rejects


def test_renumbered_account_keeps_its_canonical_id() -> None:
    first = resolve_accounts([parse_account(account())], CTX, {}, {})
    known_aliases = {"10": first.by_powens_id[10]}
    known_identities = {"iban:" + IBAN: first.by_powens_id[10]}
    renumbered = [
        parse_account(account(deleted="2026-11-21 09:00:00")),
        parse_account(account(id=99, iban=IBAN.replace("76", "76 ", 1))),
    ]
    second = resolve_accounts(renumbered, CTX, known_aliases, known_identities)
    assert second.by_powens_id[99] == second.by_powens_id[10] == first.by_powens_id[10]
    representative = second.representatives[first.by_powens_id[10]]
    assert representative.id == 99  # the live Powens id represents the account
    assert second.new_aliases == [("99", first.by_powens_id[10], "iban:" + IBAN)]


def transactions(*patches: dict) -> list:
    base = {
        "id": 1,
        "id_account": 10,
        "date": "2026-11-10",
        "value": -42.1,
        "type": "card",
        "last_update": "2026-11-20 08:00:00",
    }
    return [parse_transaction({**base, **patch}) for patch in patches]


def test_transaction_status_sign_and_description_rules() -> None:
    resolution = resolve_accounts([parse_account(account())], CTX, {}, {})
    refs = {10: type("Ref", (), {"account_id": resolution.by_powens_id[10], "currency": "EUR"})()}
    records = transactions(
        {"id": 1, "wording": "W", "simplified_wording": "S", "original_wording": "O"},
        {
            "id": 2,
            "value": 1200,
            "coming": True,
            "simplified_wording": "S",
            "original_wording": "O",
        },
        {"id": 3, "deleted": "2026-11-19 10:00:00", "coming": True, "original_wording": "O"},
        {"id": 4, "id_account": 555},
        {
            "id": 5,
            "bdate": "2026-11-11",
            "vdate": "2026-11-12",
            "categories": [{"code": "groceries"}],
        },
    )
    frame, rejects = map_transactions(records, CTX, refs, no_categories)
    rows = frame.set_index("external_id")
    assert rows.loc["1", "direction"] == "debit" and rows.loc["1", "amount"] == Decimal("-42.10")
    assert rows.loc["2", "direction"] == "credit" and rows.loc["2", "status"] == "pending"
    assert rows.loc["3", "status"] == "cancelled" and pd.notna(rows.loc["3", "deleted_at"])
    assert rows.loc["1", "status"] == "booked" and pd.notna(rows.loc["1", "booked_at"])
    assert [rows.loc[i, "description"] for i in "123"] == ["W", "S", "O"]
    assert (
        str(rows.loc["5", "booking_date"]) == "2026-11-11"
        and str(rows.loc["1", "booking_date"]) == "2026-11-10"
    )
    assert rows.loc["5", "raw_category"] == "groceries"
    assert [r.external_id for r in rejects] == ["4"] and "not in the ledger" in rejects[0].reasons[
        0
    ]
    valid, invalid = validate_batch(BankTransactionRecord, frame, duckdb.connect())
    assert len(valid) == 4 and not invalid


def test_validation_quarantines_bad_rows_and_keeps_the_rest() -> None:
    resolution = resolve_accounts([parse_account(account())], CTX, {}, {})
    refs = {10: type("Ref", (), {"account_id": resolution.by_powens_id[10], "currency": "EUR"})()}
    records = transactions(
        {"id": 1},
        {"id": 2, "original_value": 10.0, "original_currency": {"id": "ZZZ"}},
        {"id": 3, "value": 0.125},  # three decimals: DECIMAL(18,2) would round it
    )
    frame, _ = map_transactions(records, CTX, refs, no_categories)
    valid, rejects = validate_batch(BankTransactionRecord, frame, duckdb.connect())
    assert list(valid["external_id"]) == ["1"]
    reasons = {r.external_id: " ".join(r.reasons) for r in rejects}
    assert "original_currency" in reasons["2"] and "amount" in reasons["3"]


@pytest.mark.parametrize("currency", ["EURO", "ZZZ", "eur"])
def test_unknown_account_currency_is_rejected(currency: str) -> None:
    resolution = resolve_accounts([parse_account(account(currency={"id": currency}))], CTX, {}, {})
    frame = map_accounts(resolution, {}, CTX)
    valid, rejects = validate_batch(BankAccountRecord, frame, duckdb.connect())
    assert valid.empty and "currency" in rejects[0].reasons[0]


def test_balance_snapshot_per_account_per_day() -> None:
    from datetime import date

    accounts = [
        parse_account(account()),
        parse_account(account(id=11, iban="FR00X", deleted="2026-11-01 00:00:00")),
    ]
    resolution = resolve_accounts(accounts, CTX, {}, {})
    frame, rejects = map_balances(resolution, CTX, date(2026, 11, 24))
    assert len(frame) == 1 and not rejects  # the closed account has no current balance
    row = frame.iloc[0]
    # dated by Powens' last sync of the account, not by the day we asked
    assert row["id"] == canonical_id("bal", resolution.by_powens_id[10], "current", "2026-11-20")
    assert str(row["as_of_date"]) == "2026-11-20"
    assert row["available_balance"] == Decimal("1479.75")
    valid, invalid = validate_batch(AccountBalanceRecord, frame, duckdb.connect())
    assert len(valid) == 1 and not invalid


def test_transaction_metadata_is_the_sorted_compact_json_of_its_facts() -> None:
    """Built column-wise, `metadata` must stay byte for byte what serialising each row's facts
    gives: the ledger hashes it, so any other spelling would rewrite every row once."""
    import orjson

    records = transactions(
        {"id": 1, "application_date": "2026-11-09", "rdate": "2026-11-08"},
        {"id": 2, "coming": True, "active": False},
        {"id": 3, "original_value": -13.9, "original_currency": {"id": 'U"S\\D\u00e9'}},
        {"id": 4, "original_value": 1e-07, "original_currency": "USD", "id_account": 2**62},
    )
    frame, _ = map_transactions(records, CTX, {r.id_account: REF for r in records}, no_categories)
    expected = [
        orjson.dumps(
            {
                "active": r.active,
                "application_date": r.application_date.isoformat() if r.application_date else None,
                "coming": r.coming,
                "original_currency": r.original_currency.id if r.original_currency else None,
                "original_value": None if r.original_value is None else str(r.original_value),
                "powens_account_id": r.id_account,
                "rdate": r.rdate.isoformat() if r.rdate else None,
            }
        ).decode()
        for r in records
    ]
    assert list(frame["metadata"]) == expected


REF = type("Ref", (), {"account_id": "acc_x", "currency": "EUR"})()
