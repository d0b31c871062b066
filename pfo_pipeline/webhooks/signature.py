"""Powens webhook signatures (docs/powens-api.md §8.3).

`BI-Signature` = base64(HMAC-SHA256(secret, METHOD + "." + PATH + "." + BI-Signature-Date + "." +
RAW_BODY)), compared in constant time. `BI-Signature-Date` (RFC 3339 UTC) outside a small window
around now is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_SKEW = timedelta(minutes=5)


def signing_string(method: str, path: str, date: str, body: bytes) -> bytes:
    return f"{method.upper()}.{path}.{date}.".encode() + body


def sign(secret: str, method: str, path: str, date: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), signing_string(method, path, date, body), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def signature_date(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def verify(
    secret: str | None,
    method: str,
    path: str,
    date_header: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: datetime | None = None,
    max_skew: timedelta = MAX_SKEW,
) -> Verdict:
    if not secret:
        return Verdict(False, "no webhook secret configured for this connection")
    if not signature or not date_header:
        return Verdict(False, "missing BI-Signature or BI-Signature-Date")
    try:
        sent = datetime.fromisoformat(date_header.replace("Z", "+00:00"))
    except ValueError:
        return Verdict(False, "BI-Signature-Date is not a date")
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs((now or datetime.now(UTC)) - sent) > max_skew:
        return Verdict(False, "BI-Signature-Date is stale or in the future (replay refused)")
    expected = sign(secret, method, path, date_header, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return Verdict(False, "signature mismatch")
    return Verdict(True, "ok")
