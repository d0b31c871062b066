"""Parsing properties: any payload the API could send parses to the right value or fails with a
clear error naming the field; nothing is silently coerced."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfo_pipeline.powens.errors import PowensParseError
from pfo_pipeline.powens.record_parsing import parse_account
from pfo_pipeline.powens.scalars import parse_bool, parse_currency, parse_datetime, parse_money
from pfo_pipeline.powens.transaction_parsing import parse_transaction

BASE_TX = {
    "id": 309,
    "id_account": 17,
    "date": "2026-01-01",
    "rdate": "2025-12-31",
    "vdate": "2026-01-02",
    "last_update": "2026-01-02 10:05:10",
    "value": -16.22,
    "type": "card",
    "coming": False,
    "deleted": None,
    "wording": "CARREFOUR CITY",
    "formatted_value": "-16,22 €",
    "state": "parsed",
    "id_category": 9998,
    "categories": [],
    "counterparty": {"label": "Carrefour", "account_identification": "FR7630004000031234567890143"},
}


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False))
def test_money_from_json_float_is_exact(value: Decimal) -> None:
    """A 2-decimal amount sent as a JSON number comes back as the same Decimal."""
    assert parse_money(float(value), "value") == value


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_integers_are_exact(value: int) -> None:
    assert parse_money(value, "value") == Decimal(value)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "12,50 €", "abc", [], {}])
def test_money_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(PowensParseError) as info:
        parse_money(bad, "value")
    assert info.value.field == "value"


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)))
def test_naive_datetimes_are_kept_as_sent(value: datetime) -> None:
    value = value.replace(microsecond=0)
    assert parse_datetime(value.strftime("%Y-%m-%d %H:%M:%S"), "last_update") == value


def test_offset_datetimes_become_naive_paris_wall_clock() -> None:
    assert parse_datetime("2026-01-02T09:05:11+00:00", "x") == datetime(2026, 1, 2, 10, 5, 11)
    assert parse_datetime("2026-07-02T09:05:11+00:00", "x") == datetime(2026, 7, 2, 11, 5, 11)


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (0, False), (1, True)])
def test_booleans_accept_zero_one(value: object, expected: bool) -> None:
    assert parse_bool(value, "coming") is expected


@pytest.mark.parametrize("bad", [2, "true", "1", 1.0])
def test_booleans_reject_other_values(bad: object) -> None:
    with pytest.raises(PowensParseError):
        parse_bool(bad, "coming")


def test_currency_object_or_code() -> None:
    assert parse_currency({"id": "EUR", "precision": 2, "symbol": "€"}, "c").id == "EUR"
    assert parse_currency("USD", "c").id == "USD"
    with pytest.raises(PowensParseError):
        parse_currency({"symbol": "€"}, "c")


def test_transaction_parses_and_ignores_unknown_keys() -> None:
    tx = parse_transaction({**BASE_TX, "brand_new_key": {"nested": 1}})
    assert tx.id == 309 and tx.value == Decimal("-16.22")
    assert tx.date == date(2026, 1, 1) and tx.last_update == datetime(2026, 1, 2, 10, 5, 10)
    assert tx.counterparty_account == "FR7630004000031234567890143"
    assert "FR76" not in repr(tx) and "CARREFOUR" not in repr(tx)


def test_open_enums_load_unknown_strings() -> None:
    assert parse_transaction({**BASE_TX, "type": "crypto_swap"}).type == "crypto_swap"
    account = parse_account({"id": 1, "type": "ldds", "currency": {"id": "EUR"}})
    assert account.type == "ldds"


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"id": None}, "id"),
        ({"value": "12,50 €"}, "value"),
        ({"date": "2026-02-30"}, "date"),
        ({"date": None}, "date"),
        ({"coming": "yes"}, "coming"),
        ({"last_update": "yesterday"}, "last_update"),
        ({"id_account": 1.5}, "id_account"),
    ],
)
def test_malformed_transactions_name_the_field(patch: dict, field: str) -> None:
    with pytest.raises(PowensParseError) as info:
        parse_transaction({**BASE_TX, **patch})
    assert info.value.field == field


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(BASE_TX)), json_values, max_size=6))
def test_any_payload_parses_correctly_or_fails_clearly(patch: dict) -> None:
    """Fuzz each known field with arbitrary JSON: either a typed record whose value is what was
    sent, or a PowensParseError naming a field. Never another exception, never a wrong value."""
    raw = {**BASE_TX, **patch}
    try:
        tx = parse_transaction(raw)
    except PowensParseError as exc:
        assert exc.field and exc.reason
        return
    sent = raw["value"]
    assert isinstance(tx.value, Decimal)
    assert tx.value == (Decimal(repr(sent)) if isinstance(sent, float) else Decimal(str(sent)))
    assert tx.id == int(raw["id"])
    assert tx.date.isoformat() == raw["date"][:10]
    assert tx.coming is bool(raw.get("coming"))


@pytest.mark.parametrize(
    "field, value",
    [
        ("value", 12.0),
        ("value", 0.1 + 0.2),
        ("value", 7),
        ("coming", None),
        ("coming", 1),
        ("active", False),
        ("deleted", "2026-01-03 10:00:00"),
        ("deleted", "2026-01-03T09:00:00+00:00"),
        ("counterparty", None),
        ("counterparty", {"label": None}),
        ("original_value", 3.5),
        ("original_currency", {"id": "USD"}),
        ("categories", [{"code": "food"}]),
        ("vdate", "2026-01-02 00:00:00"),
        ("id_category", None),
        ("type", None),
    ],
)
def test_the_fast_parse_gives_what_the_field_by_field_parse_gives(
    field: str, value: object
) -> None:
    """Well-formed records skip the per-field parsers; the result must not change."""
    from pfo_pipeline.powens.transaction_parsing import _parse_transaction_checked

    raw = {**BASE_TX, field: value}
    assert parse_transaction(raw) == _parse_transaction_checked(raw)


def test_a_record_that_takes_the_slow_path_is_not_kept_alive() -> None:
    """The fast parse falls back for unusual records (here a foreign-currency payment); nothing
    of that detour (an exception's traceback and its frames) may keep the record alive, or a
    sync's memory grows with the history."""
    import gc

    from pfo_pipeline.powens.transaction_parsing import parse_transaction

    raw = {
        "id": 1, "id_account": 2, "date": "2026-05-01", "value": -12.5,
        "original_value": -13.9, "original_currency": {"id": "USD"},
        "last_update": "2026-05-01 10:00:00", "wording": "CB AMAZON COM USD",
    }  # fmt: skip
    for _ in range(3):
        assert parse_transaction(raw).id == 1
    gc.collect()
    holders = [r for r in gc.get_referrers(raw) if type(r).__name__ == "frame"]
    assert holders == []
