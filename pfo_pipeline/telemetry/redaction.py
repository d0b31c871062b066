"""`redact_openbanking_payload` (SPEC §9): sensitive keys keep their last 4 characters, at any
depth, in snake_case or camelCase; IBAN-looking free text is masked too; secrets vanish entirely.
Dates and numbers under other keys pass unchanged. The input is never mutated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

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
    {"token", "accesstoken", "authtoken", "apikey", "clientsecret", "secret", "password",
     "authorization", "webhooksecret"}
)  # fmt: skip
IBAN_LIKE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
REDACTED = "[REDACTED]"


def _normalise(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def mask(value: Any) -> str | None:
    """Keep the last 4 characters; 4 or fewer are masked entirely."""
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]


def _mask_ibans(text: str) -> str:
    return IBAN_LIKE.sub(lambda m: mask(m.group(0).replace(" ", "")) or "", text)


def redact_openbanking_payload(payload: Any) -> Any:
    if isinstance(payload, Mapping):
        out: dict[Any, Any] = {}
        for key, value in payload.items():
            name = _normalise(str(key))
            if name in SECRET_KEYS or "secret" in name or "token" in name:
                out[key] = REDACTED
            elif name in SENSITIVE_KEYS:
                out[key] = mask(value)
            else:
                out[key] = redact_openbanking_payload(value)
        return out
    if isinstance(payload, list | tuple):
        return type(payload)(redact_openbanking_payload(v) for v in payload)
    if isinstance(payload, str):
        return _mask_ibans(payload)
    return payload
