"""`redact_openbanking_payload` (docs/spec.md §9): what may leave the process in a log line or an event.

Sensitive keys keep their last 4 characters, at any depth, in snake_case or camelCase; IBAN-looking
free text is masked too; secrets are replaced entirely. Dates, numbers and booleans under other keys
pass unchanged (the original design turned dates into `{}`). The input is never mutated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# Normalised: lower case, without `_` (and `-`), so `account_number`, `accountNumber` and
# `AccountNumber` are one key.
SENSITIVE_KEYS = frozenset(
    {
        "iban",
        "bic",
        "accountnumber",
        "accountnumbermasked",
        "counterpartyname",
        "counterpartyaccount",
        "description",
        "merchantname",
        "merchantcategorycode",
        "reference",
    }
)
SECRET_KEYS = frozenset(
    {
        "token",
        "accesstoken",
        "authtoken",
        "apikey",
        "clientsecret",
        "secret",
        "password",
        "authorization",
        "webhooksecret",
    }
)
# Any key containing one of these is a secret too (`refresh_token`, `powensApiKey`, `db_password`).
SECRET_FRAGMENTS = ("secret", "token", "password", "apikey")
REDACTED = "[REDACTED]"

# 2 letters, 2 digits, then 11+ letters/digits with single spaces allowed (printed IBANs come in
# groups of 4). No word boundaries: an IBAN glued to other text (`REF:XFR76...`) is still found,
# and no upper bound: a longer run is masked whole rather than leaving an IBAN's tail visible.
# Upper case: masked on sight, as IBANs are usually written.
IBAN_LIKE = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,}")
# Any case: masked only when the run is IBAN-long and its ISO 13616 mod-97 checksum holds, so a
# typed-in `fr76 3000 ...` is caught while lower-case hex ids (uuids, hashes) mostly stay readable.
IBAN_ANY_CASE = re.compile(r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,}")
IBAN_LENGTHS = range(15, 35)
IBAN_START = re.compile(r"[A-Za-z]{2}[0-9]{2}")


def normalise_key(key: Any) -> str:
    """The form keys are compared in: lower case, no `_` or `-`."""
    return str(key).replace("_", "").replace("-", "").lower()


def is_secret_key(key: Any) -> bool:
    name = normalise_key(key)
    return name in SECRET_KEYS or any(fragment in name for fragment in SECRET_FRAGMENTS)


def is_sensitive_key(key: Any) -> bool:
    return normalise_key(key) in SENSITIVE_KEYS


def _as_text(value: Any) -> str:
    """Strings as they are, containers as compact JSON, anything else through `str`."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        # stdlib json, not orjson: it takes any int size and any key type once keys are str.
        return json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def mask(value: Any) -> str | None:
    """Keep the last 4 characters and star the rest; 4 or fewer are starred entirely."""
    if value is None:
        return None
    text = _as_text(value)
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def has_iban_checksum(compact: str) -> bool:
    """ISO 13616: the country and check digits moved to the end, letters as 10..35, mod 97 is 1."""
    if len(compact) not in IBAN_LENGTHS or not compact.isascii() or not compact.isalnum():
        return False
    if not IBAN_START.match(compact):
        return False
    rearranged = (compact[4:] + compact[:4]).upper()
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def mask_ibans(text: str) -> str:
    """Free text with every IBAN-looking run reduced to its last 4 characters (spaces dropped).

    Checksum-valid IBANs with a lower-case letter go first, whole (an upper-case pass alone would stop
    at the first lower-case letter and leave the rest readable); then every upper-case IBAN-like run,
    valid or not.
    """

    def mask_if_valid(match: re.Match[str]) -> str:
        return " ".join(_mask_valid_groups(match.group(0).split(" ")))

    text = IBAN_ANY_CASE.sub(mask_if_valid, text)
    return IBAN_LIKE.sub(lambda match: mask(match.group(0).replace(" ", "")) or "", text)


def _mask_valid_groups(groups: list[str]) -> list[str]:
    """Mask every group that belongs to some valid IBAN made of consecutive groups.

    A printed IBAN's groups may touch the words around it (`ref ab12 fr76 3000 ... 143 ok`), so every
    group that could open an IBAN is tried, with ends bounded by the longest IBAN (34 characters).
    Every valid span is masked, not only the first: a neighbouring word that happens to pass the
    checksum with the IBAN's first group (1 in 97) must not leave the IBAN's other groups readable.
    Spans sharing a group are masked as one run; two IBANs side by side stay two runs.
    """
    spans: list[list[int]] = []  # [start, stop) in groups, in order of start
    for start, group in enumerate(groups):
        if not IBAN_START.match(group):
            continue
        compact, stop = "", None
        for end in range(start, len(groups)):
            compact += groups[end]
            if len(compact) > IBAN_LENGTHS[-1]:
                break
            # All-upper candidates are the upper-case pass's: it masks their whole run.
            if not compact.isupper() and has_iban_checksum(compact):
                stop = end + 1
        if stop is None:
            continue
        if spans and start < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], stop)
        else:
            spans.append([start, stop])
    out, index = [], 0
    for start, stop in spans:
        out += groups[index:start]
        out.append(mask("".join(groups[start:stop])) or "")
        index = stop
    return out + groups[index:]


def redact_openbanking_payload(payload: Any) -> Any:
    """A redacted copy of `payload` (dicts, lists, tuples, sets at any depth); the input is untouched."""
    if isinstance(payload, Mapping):
        out: dict[Any, Any] = {}
        for key, value in payload.items():
            if is_secret_key(key):
                out[key] = REDACTED
            elif is_sensitive_key(key):
                out[key] = mask(value)
            else:
                out[key] = redact_openbanking_payload(value)
        return out
    if isinstance(payload, tuple):
        items = [redact_openbanking_payload(v) for v in payload]
        return type(payload)(*items) if hasattr(payload, "_fields") else tuple(items)
    if isinstance(payload, list):
        return [redact_openbanking_payload(v) for v in payload]
    if isinstance(payload, set | frozenset):
        return type(payload)(redact_openbanking_payload(v) for v in payload)
    if isinstance(payload, str):
        return mask_ibans(payload)
    return payload
