"""The read-only Powens API v2.0, one method per endpoint the pipeline calls, one return form each.

The layers under it: `transport` (httpx, retries, the shared back-off, error mapping),
`auth` (the bearer and its renewal), `pagination` (`_links.next`, its guard, read ahead),
`transaction_pages` (one page parsed, its malformed records kept aside). Other lists come as
Powens sent them (dicts): the sync layer parses them, so one malformed account is quarantined
instead of failing the call. Batching pages is the sync layer's choice.
Tokens never reach a log line, an exception or a repr.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import httpx

from pfo_pipeline.powens.auth import TokenAuth
from pfo_pipeline.powens.calendar_bounds import EARLIEST_DATE
from pfo_pipeline.powens.errors import (
    PowensError,
    PowensInvalidResponseError,
    is_no_account,
)
from pfo_pipeline.powens.options import ClientOptions
from pfo_pipeline.powens.pagination import NextLinkGuard, follow_pages, prefetch
from pfo_pipeline.powens.responses import require_list
from pfo_pipeline.powens.transaction_pages import TransactionPage, transaction_page
from pfo_pipeline.powens.transport import PowensTransport

PAGE_LIMIT = 1000
# Pages read ahead while a batch is mapped and staged. A parsed page of 1,000 rows holds about
# 2.5 MB: 4 rather than 16 took a million-row Dagster run's plateau from 660 to 630 MB at the
# same speed (the reader only waits on the queue when the mapping is the slower side).
PREFETCH_PAGES = 4
POWENS_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class PowensClient:
    """One Powens user's read-only view. Thread-safe: page chains may run in several threads."""

    def __init__(
        self,
        base_url: str,
        *,
        user_id: int | str = "me",
        api_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        options: ClientOptions | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._transport = PowensTransport(base_url, options or ClientOptions(), transport=transport)
        self._auth = TokenAuth(
            self._transport,
            user_id=user_id,
            api_key=api_key,
            client_id=client_id,
            client_secret=client_secret,
        )
        self.base_url = self._transport.base_url
        self.user_id = user_id

    def __repr__(self) -> str:
        return f"PowensClient(base_url={self.base_url!r}, user_id={self.user_id!r})"

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> PowensClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what callers report ---------------------------------------------------------------

    @property
    def retries(self) -> int:
        return self._transport.retries

    @property
    def renewals(self) -> int:
        return self._auth.renewals

    @property
    def last_server_time(self) -> datetime | None:
        """Powens' clock at its latest answer (its `Date` header)."""
        return self._transport.last_server_time

    @property
    def backoff_pauses(self) -> int:
        """Times a 429 paused every request of this client."""
        return self._transport.backoff.pauses

    # --- endpoints -------------------------------------------------------------------------

    @property
    def _user_path(self) -> str:
        return f"users/{self.user_id}"

    def _get(self, url: str, operation: str, params: dict[str, Any] | None = None) -> Any:
        return self._auth.get(url, params=params, operation=operation)[0]

    def list_connections(self) -> list[dict[str, Any]]:
        """Connections with their connector, as sent (the guardrail reads `state`/`expire`)."""
        operation = "list connections"
        body = self._get(f"{self._user_path}/connections", operation, {"expand": "connector"})
        return list(require_list(body, "connections", operation))

    def list_accounts(self, include_disabled: bool = True) -> list[Any]:
        """Accounts as sent, so the caller can quarantine a malformed one instead of failing.

        A user with no bank account yet gets a 4xx `noAccount` instead of an empty list (S3
        `NoAccountError`; S8 mocks it as a 409): that is an empty list here (facts §10)."""
        operation = "list accounts"
        params = {"all": ""} if include_disabled else None
        try:
            body = self._get(f"{self._user_path}/accounts", operation, params)
        except PowensError as exc:
            if is_no_account(exc):
                return []
            raise
        return list(require_list(body, "accounts", operation))

    def create_temporary_code(self) -> dict[str, Any]:
        """`GET /auth/token/code`: a single-use code for the Powens webview (connect flow)."""
        operation = "get temporary code"
        body = self._get("auth/token/code", operation, {"type": "singleAccess"})
        if not isinstance(body, dict) or not isinstance(body.get("code"), str):
            raise PowensInvalidResponseError("response has no 'code'", operation=operation)
        return body

    def iter_transaction_pages(
        self,
        *,
        last_update: datetime | None = None,
        min_date: date | None = None,
        max_date: date | None = None,
        include_deleted: bool = True,
        limit: int = PAGE_LIMIT,
        read_ahead: int = PREFETCH_PAGES,
    ) -> Iterator[TransactionPage]:
        """One chain of parsed pages (`pagination.follow_pages`: `_links.next`, or `offset`).

        Every listing states its window: `min_date` defaults to `EARLIEST_DATE`, as a list
        without it may select the last month only (facts §5, S2), and the bounds filter on the
        transaction's `date` (`filter=date`): unlike the default `application_date`, which users
        edit and S3 marks nullable, every row has one, and it is the ledger's day. `max_date` is
        sent only when asked: deferred-card rows are dated ahead (their debit date), and no source
        gives the server a default upper bound. A user with no account yet (`noAccount`) is an
        empty chain. `read_ahead` pages are fetched in a thread meanwhile (0: none).
        """
        params: dict[str, Any] = {"limit": limit}
        if include_deleted:
            params["all"] = ""
        if last_update is not None:
            params["last_update"] = last_update.strftime(POWENS_DATETIME_FORMAT)
        params["filter"] = "date"
        params["min_date"] = (min_date or EARLIEST_DATE).isoformat()
        if max_date is not None:
            params["max_date"] = max_date.isoformat()
        operation = "list transactions"
        if min_date is not None or max_date is not None:
            operation += f" dated {min_date or '…'}..{max_date or '…'}"
        pages = follow_pages(
            lambda url, query, op: self._auth.get(url, params=query, operation=op),
            f"{self._user_path}/transactions",
            params,
            "transactions",
            NextLinkGuard(self._transport.origin, operation),
            operation,
            limit,
        )
        if read_ahead > 0:
            pages = prefetch(pages, depth=read_ahead)
        for body, server_time, more in pages:
            yield transaction_page(body, server_time, more)
