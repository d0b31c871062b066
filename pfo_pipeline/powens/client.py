"""httpx client for the read-only Powens API v2.0.

- Auth: the bearer is the permanent user token given as `api_key`, else one renewed server-side with
  `POST /auth/renew`; on a 401 the token is renewed once and the call retried. `/auth/init` is never
  called (it creates a billable user) and a POST is never replayed after a 5xx or a timeout.
- Resilience: GETs are retried by tenacity on 429 (honouring `Retry-After`, capped), 5xx, timeouts and
  connection errors, with exponential backoff and jitter and a bounded number of attempts.
- Transactions stream page by page following `_links.next.href`; a `next` on another host (the bearer
  would leak) or one already seen is refused.
Tokens never reach a log line, an exception or a repr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import orjson
import tenacity

from pfo_pipeline.powens.errors import (
    PowensAuthError,
    PowensError,
    PowensInvalidResponseError,
    PowensNotFoundError,
    PowensParseError,
    PowensRateLimitError,
    PowensRequestError,
    PowensUnavailableError,
)
from pfo_pipeline.powens.models import (
    PowensAccount,
    PowensConnection,
    PowensConnector,
    PowensTransaction,
    PowensUser,
    parse_account,
    parse_connection,
    parse_connector,
    parse_transaction,
    parse_user,
    raw_transaction_id,
)
from pfo_pipeline.powens.prefetch import prefetch

logger = logging.getLogger("pfo_pipeline.powens")

PAGE_LIMIT = 1000
# Pages read ahead while a batch is mapped and staged (≈1 s per 100k rows): 16 pages of 1,000
# rows keep Powens busy meanwhile for a few tens of MB.
PREFETCH_PAGES = 16
POWENS_TIMEZONE = ZoneInfo("Europe/Paris")
POWENS_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def base_url_for(environment: str, domain: str | None, base_url: str | None = None) -> str:
    """`base_url` when given (emulator, tests), else `https://{domain}.biapi.pro/2.0`."""
    if base_url:
        return base_url.rstrip("/")
    if environment not in ("sandbox", "production"):
        raise ValueError(f"environment must be 'sandbox' or 'production', got {environment!r}")
    if not domain:
        raise ValueError("domain is required when base_url is not set")
    return f"https://{domain}.biapi.pro/2.0"


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record Powens sent that could not be parsed: kept whole for the quarantine."""

    raw: Any = field(repr=False)
    external_id: str | None
    reason: str


@dataclass(slots=True)
class TransactionPage:
    records: list[PowensTransaction]
    rejects: list[RejectedRecord]
    total: int | None
    # Powens' clock when it answered (its `Date` header, as naive Europe/Paris like `last_update`).
    server_time: datetime | None = None


@dataclass(slots=True)
class TransactionBatch:
    """Several pages gathered so mapping and validation run once per batch, not per page."""

    records: list[PowensTransaction] = field(default_factory=list)
    rejects: list[RejectedRecord] = field(default_factory=list)
    pages: int = 0
    total: int | None = None
    # Every `total` the batch's pages announced: more than one means the data moved mid-read.
    totals: set[int] = field(default_factory=set)
    first_server_time: datetime | None = None

    def __len__(self) -> int:
        return len(self.records) + len(self.rejects)


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


class _Retryable(Exception):
    """Internal: a transient failure tenacity may retry; carries the error to raise at the end."""

    def __init__(self, error: PowensError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _TokenRejected(Exception):
    def __init__(self, error: PowensAuthError) -> None:
        super().__init__(str(error))
        self.error = error


class PowensClient:
    """One Powens user's read-only view. Thread-compatible (use one per thread), not shared."""

    def __init__(
        self,
        base_url: str,
        *,
        user_id: int | str = "me",
        api_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        timeout_s: float = 15.0,
        max_attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        max_retry_after_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self._token = api_key or None
        self._client_id = client_id or None
        self._client_secret = client_secret or None
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.retries = 0
        self.last_server_time: datetime | None = None
        self.renewals = 0
        base = urlsplit(self.base_url)
        self._origin = (base.scheme, base.netloc)
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": "application/json", "User-Agent": "pfo-pipeline/0.1"},
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"PowensClient(base_url={self.base_url!r}, user_id={self.user_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PowensClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- public reads ----------------------------------------------------------------------

    @property
    def _user_path(self) -> str:
        return f"users/{self.user_id}"

    def get_user(self) -> PowensUser:
        body = self._get(self._user_path, operation="get user")
        return self._parse_one(parse_user, body, "get user")

    def list_connections(self) -> list[PowensConnection]:
        body = self._get(
            f"{self._user_path}/connections",
            params={"expand": "connector"},
            operation="list connections",
        )
        return [
            self._parse_one(parse_connection, item, "list connections")
            for item in self._list_key(body, "connections", "list connections")
        ]

    def list_connections_raw(self) -> list[dict[str, Any]]:
        """Connections as sent (the guardrail reads `state`/`expire`, nothing else)."""
        body = self._get(
            f"{self._user_path}/connections",
            params={"expand": "connector"},
            operation="list connections",
        )
        return list(self._list_key(body, "connections", "list connections"))

    def list_accounts(self, include_disabled: bool = True) -> list[PowensAccount]:
        params = {"all": ""} if include_disabled else None
        body = self._get(f"{self._user_path}/accounts", params=params, operation="list accounts")
        return [
            self._parse_one(parse_account, item, "list accounts")
            for item in self._list_key(body, "accounts", "list accounts")
        ]

    def list_accounts_raw(self, include_disabled: bool = True) -> list[Any]:
        """Accounts as sent, so the caller can quarantine a malformed one instead of failing."""
        params = {"all": ""} if include_disabled else None
        body = self._get(f"{self._user_path}/accounts", params=params, operation="list accounts")
        return list(self._list_key(body, "accounts", "list accounts"))

    def list_connectors(self) -> list[PowensConnector]:
        body = self._get("connectors", operation="list connectors", authenticated=False)
        return [
            self._parse_one(parse_connector, item, "list connectors")
            for item in self._list_key(body, "connectors", "list connectors")
        ]

    def create_temporary_code(self) -> dict[str, Any]:
        """`GET /auth/token/code`: a single-use code for the Powens webview (connect flow)."""
        body = self._get(
            "auth/token/code", params={"type": "singleAccess"}, operation="get temporary code"
        )
        if not isinstance(body, dict) or not isinstance(body.get("code"), str):
            raise PowensInvalidResponseError(
                "response has no 'code'", operation="get temporary code"
            )
        return body

    def iter_transaction_pages(
        self,
        *,
        last_update: datetime | None = None,
        min_date: date | None = None,
        max_date: date | None = None,
        include_deleted: bool = True,
        limit: int = PAGE_LIMIT,
    ) -> Iterator[TransactionPage]:
        """Yield parsed pages following `_links.next.href` until it is null."""
        operation = "list transactions"
        params: dict[str, Any] = {"limit": limit}
        if include_deleted:
            params["all"] = ""
        if last_update is not None:
            params["last_update"] = last_update.strftime(POWENS_DATETIME_FORMAT)
        if min_date is not None:
            params["min_date"] = min_date.isoformat()
        if max_date is not None:
            params["max_date"] = max_date.isoformat()
        pages = prefetch(self._transaction_bodies(params, operation), depth=PREFETCH_PAGES)
        for body, server_time in pages:
            records: list[PowensTransaction] = []
            rejects: list[RejectedRecord] = []
            for item in body["transactions"]:
                try:
                    records.append(parse_transaction(item))
                except PowensParseError as exc:
                    rejects.append(RejectedRecord(item, raw_transaction_id(item), str(exc)))
            total = body.get("total") if isinstance(body.get("total"), int) else None
            yield TransactionPage(records, rejects, total, server_time)

    def _transaction_bodies(
        self, params: dict[str, Any], operation: str
    ) -> Iterator[tuple[dict[str, Any], datetime | None]]:
        """Raw pages, following `_links.next.href` (run ahead of parsing by `prefetch`)."""
        url: str | None = f"{self._user_path}/transactions"
        seen: set[str] = set()
        first = True
        while url is not None:
            body = self._get(url, params=params if first else None, operation=operation)
            first = False
            self._list_key(body, "transactions", operation)
            yield body, self.last_server_time
            url = self._next_link(body, seen, operation)

    def iter_transaction_batches(
        self, *, batch_rows: int = 100_000, **page_kwargs: Any
    ) -> Iterator[TransactionBatch]:
        """Pages grouped into batches of about `batch_rows` rows; memory stays bounded."""
        batch = TransactionBatch()
        for page in self.iter_transaction_pages(**page_kwargs):
            batch.records.extend(page.records)
            batch.rejects.extend(page.rejects)
            if not batch.pages:
                batch.first_server_time = page.server_time
            batch.pages += 1
            batch.total = page.total
            if page.total is not None:
                batch.totals.add(page.total)
            if len(batch) >= batch_rows:
                yield batch
                batch = TransactionBatch()
        if batch.pages:
            yield batch

    # --- auth --------------------------------------------------------------------------------

    def renew_token(self) -> None:
        """`POST /auth/renew` (server-side, BYOK). Retried only where Powens cannot have acted:
        a 429 or a connection that never opened. Never after a 5xx or a timeout."""
        operation = "renew token"
        if not (self._client_id and self._client_secret):
            raise PowensAuthError(
                "no client_id/client_secret to renew the user token", operation=operation
            )
        if not isinstance(self.user_id, int) and not str(self.user_id).isdigit():
            raise PowensAuthError("renewal needs the numeric Powens user id", operation=operation)
        payload = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "id_user": int(self.user_id),
            "revoke_previous": False,
        }

        def attempt() -> httpx.Response:
            try:
                response = self._http.post("auth/renew", json=payload)
            except httpx.ConnectError as exc:
                raise _Retryable(
                    PowensUnavailableError(
                        f"connection failed ({type(exc).__name__})", operation=operation
                    )
                ) from None
            except httpx.TimeoutException:
                raise PowensUnavailableError(
                    "timed out; not replayed (the token may have been issued)", operation=operation
                ) from None
            except httpx.TransportError as exc:
                raise PowensUnavailableError(
                    f"transport error ({type(exc).__name__}); not replayed", operation=operation
                ) from None
            if response.status_code == 429:
                raise _Retryable(self._error_for(response, operation), self._retry_after(response))
            return response

        response = self._run_with_retries(attempt, operation)
        if response.status_code >= 400:
            error = self._error_for(response, operation)
            if isinstance(error, PowensAuthError | PowensRequestError | PowensNotFoundError):
                raise PowensAuthError(
                    error.reason,
                    operation=operation,
                    status=error.status,
                    code=error.code,
                    request_id=error.request_id,
                )
            raise error
        body = self._decode(response, operation)
        token = body.get("access_token") or body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise PowensInvalidResponseError("response has no access_token", operation=operation)
        self._token = token
        self.renewals += 1
        logger.info("Powens user token renewed for user %s", self.user_id)

    # --- transport ---------------------------------------------------------------------------

    def _get(
        self,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        operation: str,
        authenticated: bool = True,
    ) -> Any:
        if authenticated and self._token is None:
            self.renew_token()
        try:
            return self._get_with_retries(url, params, operation, authenticated)
        except _TokenRejected as rejected:
            if not (self._client_id and self._client_secret):
                raise rejected.error from None
            logger.warning("Powens %s: token rejected (401), renewing once", operation)
            self.renew_token()
            try:
                return self._get_with_retries(url, params, operation, authenticated)
            except _TokenRejected as again:
                raise again.error from None

    def _get_with_retries(
        self, url: str, params: dict[str, Any] | None, operation: str, authenticated: bool
    ) -> Any:
        def attempt() -> Any:
            headers = {"Authorization": f"Bearer {self._token}"} if authenticated else None
            try:
                response = self._http.get(url, params=params, headers=headers)
            except httpx.TimeoutException:
                raise _Retryable(PowensUnavailableError("timed out", operation=operation)) from None
            except httpx.TransportError as exc:
                raise _Retryable(
                    PowensUnavailableError(
                        f"connection failed ({type(exc).__name__})", operation=operation
                    )
                ) from None
            status = response.status_code
            if status < 400:
                self.last_server_time = powens_clock(response)
                return self._decode(response, operation)
            error = self._error_for(response, operation)
            if status == 401:
                raise _TokenRejected(error)  # type: ignore[arg-type]
            if status == 429 or status >= 500:
                raise _Retryable(error, self._retry_after(response) if status == 429 else None)
            raise error

        return self._run_with_retries(attempt, operation)

    def _run_with_retries(self, attempt: Callable[[], Any], operation: str) -> Any:
        jitter = tenacity.wait_random_exponential(
            multiplier=self.backoff_initial_s, max=self.backoff_max_s
        )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return min(exc.retry_after, self.max_retry_after_s)
            return jitter(state)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.retries += 1
            reason = exc.error.reason if isinstance(exc, _Retryable) else type(exc).__name__
            status = exc.error.status if isinstance(exc, _Retryable) else None
            logger.warning(
                "Powens %s: attempt %d/%d failed (%s%s); retrying in %.2fs",
                operation,
                state.attempt_number,
                self.max_attempts,
                reason,
                f", status {status}" if status else "",
                state.upcoming_sleep,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exhausted:
            error = exhausted.error
            if isinstance(error, PowensRateLimitError) or error.status == 429:
                raise PowensRateLimitError(
                    f"{error.reason}; gave up after {self.max_attempts} attempts",
                    operation=operation,
                    status=error.status,
                    code=error.code,
                    request_id=error.request_id,
                    retry_after=exhausted.retry_after,
                ) from None
            raise type(error)(
                f"{error.reason}; gave up after {self.max_attempts} attempts",
                operation=operation,
                status=error.status,
                code=error.code,
                request_id=error.request_id,
            ) from None

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            return None  # HTTP-date form: fall back to our own backoff
        return max(0.0, min(seconds, self.max_retry_after_s))

    @staticmethod
    def _decode(response: httpx.Response, operation: str) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            content_type = response.headers.get("content-type", "unknown")
            raise PowensInvalidResponseError(
                f"HTTP {response.status_code} body is not JSON (content-type {content_type})",
                operation=operation,
                status=response.status_code,
            ) from None

    @staticmethod
    def _error_for(response: httpx.Response, operation: str) -> PowensError:
        status = response.status_code
        code = description = request_id = None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            code = body.get("code") if isinstance(body.get("code"), str) else None
            description = (
                body.get("description") if isinstance(body.get("description"), str) else None
            )
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

    def _next_link(self, body: dict[str, Any], seen: set[str], operation: str) -> str | None:
        links = body.get("_links")
        if links is None:
            return None
        if not isinstance(links, dict):
            raise PowensInvalidResponseError("'_links' is not an object", operation=operation)
        nxt = links.get("next")
        if nxt is None:
            return None
        href = nxt.get("href") if isinstance(nxt, dict) else None
        if not isinstance(href, str) or not href:
            raise PowensInvalidResponseError("'_links.next' has no href", operation=operation)
        parts = urlsplit(href)
        if (parts.scheme, parts.netloc) != self._origin:
            raise PowensInvalidResponseError(
                "refused '_links.next' on another host (the bearer token would leak)",
                operation=operation,
            )
        if href in seen:
            raise PowensInvalidResponseError(
                "refused a repeated '_links.next' (pagination loop)", operation=operation
            )
        seen.add(href)
        return href

    @staticmethod
    def _list_key(body: Any, key: str, operation: str) -> list[Any]:
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise PowensInvalidResponseError(f"response has no '{key}' list", operation=operation)
        return body[key]

    @staticmethod
    def _parse_one(parser: Callable[[Any], Any], item: Any, operation: str) -> Any:
        try:
            return parser(item)
        except PowensParseError as exc:
            raise PowensInvalidResponseError(
                f"malformed record ({exc})", operation=operation
            ) from None
