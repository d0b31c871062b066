"""Redaction properties (SPEC §9) and events that never fail the run emitting them."""

from __future__ import annotations

import copy
import logging
from datetime import date, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pfo_pipeline.telemetry import events
from pfo_pipeline.telemetry.redaction import SENSITIVE_KEYS, redact_openbanking_payload
from tests.conftest import open_ledger

SNAKE = [
    "iban", "bic", "account_number", "account_number_masked", "counterparty_name",
    "counterparty_account", "description", "merchant_name", "merchant_category_code", "reference",
]  # fmt: skip
CAMEL = [k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]) for k in SNAKE]
IBAN = "FR7630004000031234567890143"


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


sensitive_values = st.text(
    min_size=5, max_size=30, alphabet=st.characters(min_codepoint=48, max_codepoint=122)
)
keys = st.sampled_from(SNAKE + CAMEL)
payloads = st.recursive(
    st.dictionaries(keys, sensitive_values, min_size=1, max_size=3),
    lambda children: (
        st.dictionaries(st.text(max_size=6) | keys, children, max_size=3)
        | st.lists(children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(payloads)
def test_no_listed_key_leaves_unmasked_at_any_depth(payload) -> None:
    original = copy.deepcopy(payload)
    redacted = redact_openbanking_payload(payload)
    assert payload == original  # input untouched
    for path, value in _leaves(redacted):
        key = next((p for p in reversed(path) if isinstance(p, str)), None)
        if key is not None and key.replace("_", "").lower() in SENSITIVE_KEYS and value is not None:
            assert value[:-4] == "*" * (len(value) - 4)


@given(st.text(max_size=20), st.text(max_size=20))
def test_iban_like_free_text_is_masked(before: str, after: str) -> None:
    text = f"{before} {IBAN} {after}"
    redacted = redact_openbanking_payload({"note": text})["note"]
    assert IBAN not in redacted and "*" * 20 in redacted


@given(
    st.dates(),
    st.datetimes(),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
)
def test_dates_and_numbers_elsewhere_survive(
    d: date, dt: datetime, i: int, f: float, b: bool
) -> None:
    payload = {"from": d, "at": dt, "count": i, "amount": f, "ok": b, "nested": [{"to": d}]}
    assert redact_openbanking_payload(payload) == payload


def test_secrets_vanish_entirely() -> None:
    redacted = redact_openbanking_payload(
        {"access_token": "abcdefgh12345678", "clientSecret": "s3cr3t-value", "api_key": "k-1234567"}
    )
    assert set(redacted.values()) == {"[REDACTED]"}


def test_events_land_in_logs_and_table_redacted(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="pfo_pipeline.telemetry")
    ctx = events.TelemetryContext(
        "t1",
        "pocket-family-office",
        "pocket-family-office.app@1.0.0",
        1,
        "primaryOpenBanking",
        "c1",
    )
    conn = open_ledger(tmp_path / "ledger")
    event = events.build_event(
        events.TRANSACTIONS_SYNCED, ctx, {"synced_count": 3, "iban": IBAN, "note": f"to {IBAN}"}
    )
    events.emit(event, conn=conn)
    stored = conn.execute(
        "SELECT name, tenant_id, config_version, properties FROM telemetry.events"
    ).fetchall()
    assert stored[0][:3] == ("openbanking.transactions.synced", "t1", 1)
    assert IBAN not in stored[0][3] and IBAN not in caplog.text and "0143" in caplog.text
    assert '"synced_count":3' in stored[0][3].replace(" ", "")


def test_emit_never_raises(tmp_path: Path, caplog) -> None:
    conn = open_ledger(tmp_path / "ledger")
    conn.close()
    ctx = events.TelemetryContext("t1", "a", "b", 1, "s", "c")
    events.emit(events.build_event(events.ACCOUNTS_SYNC_FAILED, ctx, {"error": "x"}), conn=conn)
    assert "not stored" in caplog.text
