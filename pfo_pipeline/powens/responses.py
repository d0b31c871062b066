"""Reading a Powens HTTP answer: its JSON body, the error its status means, its `Retry-After`
and Powens' clock in its `Date` header. Pure functions of one `httpx.Response`.

Error messages name the call, the status, Powens' `code` and `request_id`, and Powens' own
`description`; never the body otherwise (it could hold personal data), never a token.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from pfo_pipeline.powens.errors import (
    PowensAuthError,
    PowensError,
    PowensInvalidResponseError,
    PowensNotFoundError,
    PowensRateLimitError,
    PowensRequestError,
    PowensUnavailableError,
)

POWENS_TIMEZONE = ZoneInfo("Europe/Paris")


def powens_clock(response: httpx.Response) -> datetime | None:
    """Powens' clock at the answer, from the standard `Date` header, in the naive Europe/Paris
    wall-clock Powens uses for `last_update`; None when absent or unreadable."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(POWENS_TIMEZONE).replace(tzinfo=None)


def retry_after(response: httpx.Response, cap_s: float) -> float | None:
    """`Retry-After` in seconds, capped; None when absent or in the HTTP-date form (our own
    backoff applies then)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, min(seconds, cap_s))


def release(response: httpx.Response) -> None:
    """Break httpx's cycle between a read response and its stream (`response.stream` holds the
    response back: encode/httpx#3733), so the response, its ~1 MB body and its request objects
    go as soon as the caller drops them, not at the cyclic collector's next pass."""
    response.stream = httpx.ByteStream(b"")


def decode(response: httpx.Response, operation: str) -> Any:
    """The JSON body, or an invalid-response error that says what came instead."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        content_type = response.headers.get("content-type", "unknown")
        raise PowensInvalidResponseError(
            f"HTTP {response.status_code} body is not JSON (content-type {content_type})",
            operation=operation,
            status=response.status_code,
        ) from None


def error_for(response: httpx.Response, operation: str) -> PowensError:
    """The error a 4xx/5xx answer means, with Powens' `code`, `description` and `request_id`."""
    status = response.status_code
    code = description = request_id = None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        description = body.get("description") if isinstance(body.get("description"), str) else None
        rid = body.get("request_id", body.get("requestId"))
        request_id = str(rid) if rid is not None else None
    request_id = request_id or response.headers.get("X-Request-Id")
    what = description or (
        f"HTTP {status}" if body is not None else f"HTTP {status} with a non-JSON body"
    )
    kwargs: dict[str, Any] = {
        "operation": operation,
        "status": status,
        "code": code,
        "request_id": request_id,
    }
    if status in (401, 403):
        return PowensAuthError(what, **kwargs)
    if status == 404:
        return PowensNotFoundError(what, **kwargs)
    if status == 429:
        return PowensRateLimitError(what, **kwargs)
    if status >= 500:
        return PowensUnavailableError(what, **kwargs)
    return PowensRequestError(what, **kwargs)


def require_list(body: Any, key: str, operation: str) -> list[Any]:
    """`body[key]` when it is the list the API documents, else an invalid-response error."""
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise PowensInvalidResponseError(f"response has no '{key}' list", operation=operation)
    return body[key]
