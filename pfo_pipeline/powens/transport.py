"""HTTP to Powens: one httpx client, tenacity retries, one back-off shared by every thread.

- GETs are retried on 429 (honouring `Retry-After`, capped), 5xx, timeouts and connection
  errors, with exponential backoff and jitter and a bounded number of attempts.
- A POST is retried only where Powens cannot have acted (a 429, a connection that never opened),
  never after a 5xx or a timeout: `/auth/renew` issues a token each time it runs.
- A 429 pauses every request of the client, not only the one that got it: concurrent page chains
  share one rate limit, so they back off together (`SharedBackoff`).
- A 401 is not retried here: it raises `TokenRejected` for the auth layer to renew once.
- A connection that cannot be opened (refused, name not resolved, connect timeout) is retried
  `UNREACHABLE_ATTEMPTS` times within seconds, then raises `PowensUnreachableError` naming the
  host and port: a wrong address or Powens down, which Dagster does not retry either.
Thread-safe: one transport serves several page chains at once (httpx's client is).
"""

from __future__ import annotations

import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import tenacity

from pfo_pipeline.powens.errors import (
    PowensAuthError,
    PowensError,
    PowensRateLimitError,
    PowensUnavailableError,
    PowensUnreachableError,
)
from pfo_pipeline.powens.options import ClientOptions
from pfo_pipeline.powens.responses import decode, error_for, powens_clock, release, retry_after

logger = logging.getLogger("pfo_pipeline.powens")

# A refused connection or an unknown host answers in milliseconds: a few quick attempts ride out
# a restart, and the run fails within seconds instead of minutes of back-off.
UNREACHABLE_ATTEMPTS = 3
# Opening a connection (TCP and TLS) takes well under a second to Powens; a dropped SYN would
# otherwise hold each attempt for the whole request timeout.
MAX_CONNECT_TIMEOUT_S = 5.0


class TokenRejected(Exception):
    """A 401: the auth layer may renew the token once and call again."""

    def __init__(self, error: PowensAuthError) -> None:
        super().__init__(str(error))
        self.error = error


class _Retryable(Exception):
    """A transient failure tenacity may retry; carries the error to raise once attempts run out."""

    def __init__(self, error: PowensError, retry_after_s: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after_s


class SharedBackoff:
    """A pause every request of a client waits out: a 429 on one page chain holds them all,
    as Powens' rate limit counts the user's calls, not one chain's."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self.pauses = 0
        self.waits = 0

    def pause(self, seconds: float) -> None:
        """No request starts for `seconds` from now (a longer pause already set is kept)."""
        with self._lock:
            self._resume_at = max(self._resume_at, self._clock() + seconds)
            self.pauses += 1

    def wait(self) -> None:
        """Return once no pause is in force (a pause set meanwhile is waited out too)."""
        while True:
            with self._lock:
                remaining = self._resume_at - self._clock()
                if remaining <= 0:
                    return
                self.waits += 1
            self._sleep(remaining)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context (httpx's default: certifi's CA bundle) for every client of the process:
    building one loads the bundle, ~40-100 ms, and a sync builds several clients (its step, its
    checks, each a client of its own)."""
    return httpx.create_ssl_context()


class PowensTransport:
    """GET and POST against one Powens base URL, with the retry policies above."""

    def __init__(
        self,
        base_url: str,
        options: ClientOptions,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_attempts = options.max_attempts
        self.backoff_initial_s = options.backoff_initial_s
        self.backoff_max_s = options.backoff_max_s
        self.max_retry_after_s = options.max_retry_after_s
        timeout_s = options.timeout_s
        self.backoff = SharedBackoff()
        self.last_server_time: datetime | None = None
        self._retries = 0
        self._count_lock = threading.Lock()
        base = urlsplit(self.base_url)
        self.origin = (base.scheme, base.netloc)
        # Named in connection errors, so an operator sees which address failed (no secret in it).
        default_port = 443 if base.scheme == "https" else 80
        self.address = f"{base.hostname}:{base.port or default_port}"
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, MAX_CONNECT_TIMEOUT_S)),
            headers={"Accept": "application/json", "User-Agent": "pfo-pipeline/0.1"},
            transport=transport,
            follow_redirects=False,
            verify=_tls_context(),
        )

    @property
    def retries(self) -> int:
        """Attempts retried so far, every thread counted."""
        return self._retries

    def close(self) -> None:
        self._http.close()

    def get(
        self,
        url: str,
        *,
        params: dict[str, Any] | None,
        operation: str,
        bearer: str | None,
    ) -> tuple[Any, datetime | None]:
        """The decoded body and Powens' clock at the answer; raises `TokenRejected` on a 401."""

        def attempt() -> tuple[Any, datetime | None]:
            headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else None
            self.backoff.wait()
            try:
                response = self._http.get(url, params=params, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise _Retryable(self._unreachable(exc, operation)) from None
            except httpx.TimeoutException:
                raise _Retryable(
                    PowensUnavailableError(
                        f"timed out waiting for {self.address}", operation=operation
                    )
                ) from None
            except httpx.TransportError as exc:
                raise _Retryable(
                    PowensUnavailableError(
                        f"cannot reach {self.address} ({type(exc).__name__})", operation=operation
                    )
                ) from None
            release(response)  # the body is read: nothing keeps the response alive but us
            status = response.status_code
            if status < 400:
                clock = powens_clock(response)
                self.last_server_time = clock
                return decode(response, operation), clock
            error = error_for(response, operation)
            if status == 401:
                raise TokenRejected(error)  # type: ignore[arg-type]
            if status == 429:
                raise _Retryable(error, retry_after(response, self.max_retry_after_s))
            if status >= 500:
                raise _Retryable(error)
            raise error

        return self._with_retries(attempt, operation)

    def post_not_replayed(self, path: str, *, json: Any, operation: str) -> httpx.Response:
        """POST retried only on a 429 or a connection that never opened; the answer as is."""

        def attempt() -> httpx.Response:
            self.backoff.wait()
            try:
                response = self._http.post(path, json=json)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise _Retryable(self._unreachable(exc, operation)) from None
            except httpx.TimeoutException:
                raise PowensUnavailableError(
                    "timed out; not replayed (the token may have been issued)", operation=operation
                ) from None
            except httpx.TransportError as exc:
                raise PowensUnavailableError(
                    f"transport error ({type(exc).__name__}); not replayed", operation=operation
                ) from None
            if response.status_code == 429:
                raise _Retryable(
                    error_for(response, operation), retry_after(response, self.max_retry_after_s)
                )
            return response

        return self._with_retries(attempt, operation)

    def _unreachable(self, exc: httpx.TransportError, operation: str) -> PowensUnreachableError:
        """No connection opened: the address first, then the system's reason (no secret in it)."""
        detail = str(exc).split("] ", 1)[-1].strip() or type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            detail = "connect timed out"
        return PowensUnreachableError(
            f"cannot reach {self.address} ({detail.lower()}): check the connection's base_url, "
            "or whether Powens (or the emulator) is up",
            operation=operation,
        )

    def _with_retries(self, attempt: Callable[[], Any], operation: str) -> Any:
        jitter = tenacity.wait_random_exponential(
            multiplier=self.backoff_initial_s, max=self.backoff_max_s
        )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return exc.retry_after
            return jitter(state)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            with self._count_lock:
                self._retries += 1
            status = exc.error.status if isinstance(exc, _Retryable) else None
            if status == 429:
                self.backoff.pause(state.upcoming_sleep)
            reason = exc.error.reason if isinstance(exc, _Retryable) else type(exc).__name__
            unreachable = isinstance(exc, _Retryable) and isinstance(
                exc.error, PowensUnreachableError
            )
            logger.warning(
                "Powens %s: attempt %d/%d failed (%s%s); retrying in %.2fs",
                operation,
                state.attempt_number,
                UNREACHABLE_ATTEMPTS if unreachable else self.max_attempts,
                reason,
                f", status {status}" if status else "",
                state.upcoming_sleep,
            )

        def unreachable_for_long(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            unreachable = isinstance(exc, _Retryable) and isinstance(
                exc.error, PowensUnreachableError
            )
            return unreachable and state.attempt_number >= UNREACHABLE_ATTEMPTS

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts) | unreachable_for_long,
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exhausted:
            attempts = retrying.statistics.get("attempt_number", self.max_attempts)
            raise _gave_up(exhausted, operation, attempts) from None


def _gave_up(exhausted: _Retryable, operation: str, attempts: int) -> PowensError:
    """The last transient error, saying the retries ran out."""
    error = exhausted.error
    reason = f"{error.reason}; gave up after {attempts} attempts"
    common: dict[str, Any] = {
        "operation": operation,
        "status": error.status,
        "code": error.code,
        "request_id": error.request_id,
    }
    if isinstance(error, PowensRateLimitError) or error.status == 429:
        return PowensRateLimitError(reason, retry_after=exhausted.retry_after, **common)
    return type(error)(reason, **common)
