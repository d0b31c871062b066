"""`redact_openbanking_payload` (docs/spec.md §9) as properties: what must be masked at any depth is, what
must survive does, and the input is never touched."""

from __future__ import annotations

import copy
from collections import namedtuple
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pfo_pipeline.telemetry.redaction import REDACTED, redact_openbanking_payload

SNAKE = [
    "iban", "bic", "account_number", "account_number_masked", "counterparty_name",
    "counterparty_account", "description", "merchant_name", "merchant_category_code", "reference",
]  # fmt: skip
CAMEL = [k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]) for k in SNAKE]
PASCAL = [k[0].upper() + k[1:] for k in CAMEL]
LISTED = {k.replace("_", "").lower() for k in SNAKE}
SECRET_KEYS = [
    "token", "access_token", "auth_token", "api_key", "client_secret", "secret", "password",
    "authorization", "webhook_secret", "accessToken", "clientSecret", "refresh_token", "Authorization",
]  # fmt: skip


def _expected_mask(text: str) -> str:
    return "*" * len(text) if len(text) <= 4 else "*" * (len(text) - 4) + text[-4:]


def _is_listed(key: Any) -> bool:
    return isinstance(key, str) and key.replace("_", "").replace("-", "").lower() in LISTED


def _is_secretish(key: Any) -> bool:
    name = str(key).replace("_", "").replace("-", "").lower()
    return any(f in name for f in ("secret", "token", "password", "apikey", "authorization"))


listed_keys = st.sampled_from(SNAKE + CAMEL + PASCAL)
other_keys = st.text(max_size=8).filter(lambda k: not _is_listed(k) and not _is_secretish(k))
sensitive_values = st.text(max_size=40) | st.none() | st.integers() | st.decimals(allow_nan=False)
payloads = st.recursive(
    st.dictionaries(listed_keys, sensitive_values, min_size=1, max_size=3),
    lambda children: (
        st.dictionaries(other_keys | listed_keys, children, max_size=3)
        | st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
    ),
    max_leaves=15,
)


def _pairs(original: Any, redacted: Any):
    """Walk both structures together, yielding (key, original value, redacted value) per dict key."""
    if isinstance(original, dict):
        assert isinstance(redacted, dict) and set(redacted) == set(original)
        for key, value in original.items():
            yield key, value, redacted[key]
            if not _is_listed(key):
                yield from _pairs(value, redacted[key])
    elif isinstance(original, list | tuple):
        assert type(redacted) is type(original) and len(redacted) == len(original)
        for a, b in zip(original, redacted, strict=True):
            yield from _pairs(a, b)


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_no_listed_key_leaves_unmasked_at_any_depth(payload: Any) -> None:
    original = copy.deepcopy(payload)
    redacted = redact_openbanking_payload(payload)
    assert payload == original  # input untouched
    for key, before, after in _pairs(payload, redacted):
        if not _is_listed(key):
            continue
        if before is None:
            assert after is None
        elif isinstance(before, dict | list | tuple):  # stringified as JSON, then masked
            assert isinstance(after, str) and after[:-4] == "*" * (len(after) - 4)
            assert len(after) >= 2
        else:
            assert after == _expected_mask(before if isinstance(before, str) else str(before))


ibans = st.builds(
    lambda country, check, bban, grouped: (country + check + bban, grouped),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=2, max_size=2),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=11, max_size=30),
    st.booleans(),
)


def _printed(iban: str, grouped: bool) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if grouped else iban


@settings(max_examples=300, deadline=None)
@given(ibans, st.text(max_size=20), st.text(max_size=20), other_keys)
def test_iban_like_free_text_is_masked_anywhere(
    iban_and_style: tuple[str, bool], before: str, after: str, key: str
) -> None:
    iban, grouped = iban_and_style
    text = f"{before}{_printed(iban, grouped)}{after}"
    redacted = redact_openbanking_payload({"outer": [{key: text}], "note": text})
    for value in (redacted["note"], redacted["outer"][0][key]):
        compact = value.replace(" ", "")
        assert iban[:-4] not in compact  # at most the last 4 characters stay readable
        assert "*" * (len(iban) - 4) in compact


def _with_check_digits(country: str, bban: str) -> str:
    """A real IBAN: check digits computed by ISO 13616 mod 97."""
    digits = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


valid_ibans_any_case = st.builds(
    lambda country, bban, lower_mask, grouped: (
        "".join(
            char.lower() if lowered else char
            for char, lowered in zip(_with_check_digits(country, bban), lower_mask, strict=False)
        ),
        grouped,
    ),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=11, max_size=30),
    st.lists(st.booleans(), min_size=34, max_size=34).filter(any),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(valid_ibans_any_case, st.text(max_size=20), st.text(max_size=20))
# Found by this test: `NJ035AAAA1A Aa49` passes the checksum by chance (1 in 97), and masking only
# that span left the rest of the IBAN readable.
@example(iban_and_style=("Aa4907HQM35900999901", True), before="NJ035AAAA1A", after="")
@example(iban_and_style=("Aa4907HQM35900999901", False), before="NJ035AAAA1A", after="")
def test_a_valid_iban_typed_in_any_case_is_masked(
    iban_and_style: tuple[str, bool], before: str, after: str
) -> None:
    iban, grouped = iban_and_style
    redacted = redact_openbanking_payload({"note": f"{before} {_printed(iban, grouped)} {after}"})
    compact = redacted["note"].replace(" ", "")
    assert iban[:-4].upper() not in compact.upper()  # at most the last 4 characters stay readable
    assert "*" * (len(iban) - 4) in compact


def test_lower_case_ids_that_are_not_ibans_stay_readable() -> None:
    text = (
        "run 3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f commit ab12cdef0123456789ab "
        "sha ea83b1c2d4e5f60718293a4b5c6d7e8f90a1b2c3 and fr76 3000 4000 0312 3456 7890 144"
    )
    assert redact_openbanking_payload(text) == text  # the last one fails its checksum by one digit


def test_a_lower_case_iban_touching_other_words_is_masked_alone() -> None:
    text = "ref xy12 fr76 3000 4000 0312 3456 7890 143 gb82 west 1234 5698 7654 32 ok"
    assert redact_openbanking_payload(text) == (
        "ref xy12 ***********************0143 ******************5432 ok"
    )


def test_a_known_iban_in_a_sentence_keeps_only_its_last_four() -> None:
    text = "Transfer to FR76 3000 4000 0312 3456 7890 143 failed"
    assert redact_openbanking_payload(text) == "Transfer to ***********************0143 failed"


scalars = (
    st.dates()
    | st.datetimes()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none()
    | st.decimals(allow_nan=False)
)


nested_scalars = st.lists(scalars | st.dictionaries(other_keys, scalars, max_size=3), max_size=3)


def _types(value: Any) -> Any:
    """The type of every leaf, in the container's shape."""
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(other_keys, scalars | nested_scalars, max_size=6))
def test_dates_and_numbers_under_other_keys_survive_unchanged(payload: dict[str, Any]) -> None:
    redacted = redact_openbanking_payload(payload)
    assert redacted == payload
    assert _types(redacted) == _types(payload)  # a date stays a date, never {}, even in a list


def test_non_text_values_under_listed_keys_are_stringified_then_masked() -> None:
    redacted = redact_openbanking_payload(
        {
            "account_number": 12345678901,
            "merchantCategoryCode": 5411,
            "reference": {"id": "ABC-987654"},
            "bic": "POWEFRPP",
            "description": "abc",
            "counterpartyName": None,
            "iban": Decimal("1234567.89"),
        }
    )
    assert redacted["account_number"] == "*******8901"
    assert redacted["merchantCategoryCode"] == "****"
    assert redacted["reference"] == "*" * 15 + '54"}'  # {"id":"ABC-987654"} as JSON
    assert redacted["bic"] == "****FRPP"
    assert redacted["description"] == "***"
    assert redacted["counterpartyName"] is None
    assert redacted["iban"] == "******7.89"


def test_secrets_are_replaced_entirely_at_any_depth() -> None:
    payload = {key: f"value-of-{key}-123456" for key in SECRET_KEYS}
    redacted = redact_openbanking_payload({"outer": [payload], "headers": {"x-api-key": "k"}})
    assert set(redacted["outer"][0].values()) == {REDACTED}
    assert redacted["headers"]["x-api-key"] == REDACTED


def test_containers_keep_their_shape_and_the_input_is_not_shared() -> None:
    Window = namedtuple("Window", "start end iban_note")
    window = Window(date(2026, 1, 1), datetime(2026, 2, 1, 12), "to FR7630004000031234567890143")
    payload = {"window": window, "ids": (1, 2), "tags": {"a"}, "items": [{"iban": "FR76300040"}]}
    snapshot = copy.deepcopy(payload)
    redacted = redact_openbanking_payload(payload)
    assert payload == snapshot
    assert isinstance(redacted["window"], Window) and redacted["window"].start == date(2026, 1, 1)
    assert (
        redacted["window"].iban_note.endswith("0143") and "FR76" not in redacted["window"].iban_note
    )
    assert redacted["ids"] == (1, 2) and redacted["tags"] == {"a"}
    assert (
        redacted["items"] is not payload["items"] and redacted["items"][0]["iban"] == "******0040"
    )


def test_redaction_is_idempotent() -> None:
    payload = {"iban": "FR7630004000031234567890143", "note": "to GB82WEST12345698765432 ok"}
    once = redact_openbanking_payload(payload)
    assert redact_openbanking_payload(once) == once
