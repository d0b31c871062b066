"""The user's bearer token: the permanent one given as `api_key`, else one renewed server-side
with `POST /auth/renew` (BYOK); on a 401 it is renewed and the call made again (bounded).

`/auth/init` is never called (it creates a billable user). Several page chains may hit a 401 at
once: only the first renews, the others use the token it got. The token never reaches a log line,
an exception or a repr.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pfo_pipeline.powens.errors import (
    PowensAuthError,
    PowensInvalidResponseError,
    PowensNotFoundError,
    PowensRequestError,
    PowensUnavailableError,
    PowensUnreachableError,
)
from pfo_pipeline.powens.responses import decode, error_for
from pfo_pipeline.powens.transport import PowensTransport, TokenRejected

logger = logging.getLogger("pfo_pipeline.powens")

# One call renews once when alone; page chains share the token, and another chain's request can
# be the one that finds a just-renewed token expired, so a call may renew a little more, never
# without bound (wrong credentials fail at the renewal itself).
RENEWALS_PER_CALL = 3
# A renewal that failed on Powens' side (5xx) or in flight (timeout) may have issued a token or
# not; asking for a fresh one is safe (`revoke_previous` is false: a second token does not harm
# the first), so it is asked again, a bounded number of times with a growing pause.
RENEW_ATTEMPTS = 3
RENEW_PAUSE_S = 0.25


@dataclass(frozen=True, slots=True)
class _Fresh:
    token: str = field(repr=False)
    renewed_here: bool


class TokenAuth:
    """Holds one Powens user's token and renews it when needed."""

    def __init__(
        self,
        transport: PowensTransport,
        *,
        user_id: int | str,
        api_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self._transport = transport
        self.user_id = user_id
        self._token = api_key or None
        self._client_id = client_id or None
        self._client_secret = client_secret or None
        self._lock = threading.Lock()
        self.renewals = 0

    def __repr__(self) -> str:
        return f"TokenAuth(user_id={self.user_id!r})"

    @property
    def can_renew(self) -> bool:
        return bool(self._client_id and self._client_secret)

    def get(self, url: str, *, params: dict[str, Any] | None, operation: str) -> tuple[Any, Any]:
        """An authenticated GET: a token is renewed first if there is none, and again if Powens
        rejects it (401), at most `RENEWALS_PER_CALL` times by this call; then the auth error."""
        token = self._token
        if token is None:
            token = self._renew_unless_changed(None)
        renewed = switches = 0
        while True:
            try:
                return self._transport.get(url, params=params, operation=operation, bearer=token)
            except TokenRejected as rejected:
                exhausted = renewed >= RENEWALS_PER_CALL or switches >= 2 * RENEWALS_PER_CALL
                if not self.can_renew or exhausted:
                    raise rejected.error from None
                # A token expiring is routine: renewing it is what the credentials are for.
                logger.info("Powens %s: token rejected (401), renewing", operation)
                fresh = self._renew_unless_changed(token)
                renewed += fresh.renewed_here
                switches += 1
                token = fresh.token

    def _renew_unless_changed(self, rejected: str | None) -> _Fresh:
        """Renew, unless another thread already replaced the rejected token meanwhile."""
        with self._lock:
            if self._token is not None and self._token != rejected:
                return _Fresh(self._token, False)
            self.renew()
            assert self._token is not None
            return _Fresh(self._token, True)

    def renew(self) -> None:
        """`POST /auth/renew` (server-side, BYOK). The transport retries it only where Powens
        cannot have acted (a 429, a connection that never opened); after a 5xx or a timeout this
        asks for a fresh token (a new renewal, not a replay), `RENEW_ATTEMPTS` times at most."""
        for attempt in range(1, RENEW_ATTEMPTS + 1):
            try:
                self._renew_once()
                return
            except PowensUnreachableError:
                raise  # no server answered: asking again cannot have issued a token
            except PowensUnavailableError as exc:
                if attempt == RENEW_ATTEMPTS:
                    raise PowensUnavailableError(
                        f"{exc.reason} ({RENEW_ATTEMPTS} fresh renewals asked, none answered)",
                        operation=exc.operation,
                        status=exc.status,
                        code=exc.code,
                        request_id=exc.request_id,
                    ) from None
                logger.warning(
                    "Powens renew token: attempt %d/%d failed (%s); asking for a fresh token",
                    attempt,
                    RENEW_ATTEMPTS,
                    exc.reason,
                )
                time.sleep(RENEW_PAUSE_S * 2 ** (attempt - 1))

    def _renew_once(self) -> None:
        operation = "renew token"
        if not self.can_renew:
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
        response = self._transport.post_not_replayed(
            "auth/renew", json=payload, operation=operation
        )
        if response.status_code >= 400:
            error = error_for(response, operation)
            if isinstance(error, PowensAuthError | PowensRequestError | PowensNotFoundError):
                raise PowensAuthError(
                    error.reason,
                    operation=operation,
                    status=error.status,
                    code=error.code,
                    request_id=error.request_id,
                )
            raise error
        body = decode(response, operation)
        token = body.get("access_token") or body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise PowensInvalidResponseError("response has no access_token", operation=operation)
        self._token = token
        self.renewals += 1
        logger.info("Powens user token renewed for user %s", self.user_id)
