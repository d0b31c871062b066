"""How Powens signs a webhook (docs/powens-api.md §8.3), written from the documentation and
independent of the product's verifier, so that a test can check one against the other.

    BI-Signature      = base64( HMAC-SHA256( secret_key,
                                METHOD + "." + PATH + "." + BI-Signature-Date + "." + RAW_BODY ) )
    BI-Signature-Date = the date the header carries, taken raw (RFC 3339 UTC here)

METHOD is upper-case, PATH the listener's request path without host or query, RAW_BODY the exact
bytes sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlsplit

SIGNATURE_HEADER = "BI-Signature"
DATE_HEADER = "BI-Signature-Date"


def rfc3339_utc(moment: datetime | None = None) -> str:
    """`2026-11-24T07:00:00Z`: the `BI-Signature-Date` value for `moment` (default: now)."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def bi_signature(secret_key: str, method: str, path: str, date: str, raw_body: bytes) -> str:
    message = b".".join((method.upper().encode(), path.encode(), date.encode(), raw_body))
    mac = hmac.new(secret_key.encode(), message, digestmod=hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def signed_headers(
    secret_key: str | None,
    url: str,
    raw_body: bytes,
    *,
    method: str = "POST",
    moment: datetime | None = None,
) -> dict[str, str]:
    """Headers of a webhook delivery to `url`: always the date, the signature when a secret is
    configured (without one, Powens sends unsigned pushes)."""
    date = rfc3339_utc(moment)
    headers = {"Content-Type": "application/json", DATE_HEADER: date}
    if secret_key:
        path = urlsplit(url).path or "/"
        headers[SIGNATURE_HEADER] = bi_signature(secret_key, method, path, date, raw_body)
    return headers
