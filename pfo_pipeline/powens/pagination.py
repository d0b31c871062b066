"""Powens' relational pagination: follow `_links.next.href` verbatim until it is null, refuse a
`next` that would leak the bearer or loop, parse each page, and read ahead in a thread.

A `next` on another scheme or host than the base URL would send the bearer token there; one
already followed means the chain loops. Both stop the chain with an invalid-response error.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pfo_pipeline.powens.errors import PowensInvalidResponseError, PowensParseError
from pfo_pipeline.powens.models import PowensTransaction, parse_transaction, raw_transaction_id
from pfo_pipeline.powens.responses import require_list

T = TypeVar("T")
_DONE = object()

# (url, params, operation) -> (decoded body, Powens' clock at the answer)
PageGetter = Callable[[str, dict[str, Any] | None, str], tuple[Any, datetime | None]]


class NextLinkGuard:
    """Checks each `_links.next` of one chain: same origin as the base URL, never seen before."""

    def __init__(self, origin: tuple[str, str], operation: str) -> None:
        self._origin = origin
        self._operation = operation
        self._seen: set[str] = set()

    def next_link(self, body: dict[str, Any]) -> str | None:
        """The URL to follow, None at the end of the chain."""
        operation = self._operation
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
        if href in self._seen:
            raise PowensInvalidResponseError(
                "refused a repeated '_links.next' (pagination loop)", operation=operation
            )
        self._seen.add(href)
        return href


def follow_links(
    get: PageGetter,
    first_url: str,
    params: dict[str, Any],
    list_key: str,
    guard: NextLinkGuard,
    operation: str,
) -> Iterator[tuple[dict[str, Any], datetime | None]]:
    """Raw pages of one chain: `params` on the first request only, then each `next` as sent."""
    url: str | None = first_url
    first = True
    while url is not None:
        body, clock = get(url, params if first else None, operation)
        first = False
        require_list(body, list_key, operation)
        yield body, clock
        url = guard.next_link(body)


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
    has_next: bool = False
    # The user's whole date range as Powens announces it (`first_date`/`last_date`).
    first_date: date | None = None
    last_date: date | None = None


def transaction_page(body: dict[str, Any], server_time: datetime | None) -> TransactionPage:
    """Parse one page; a record that does not parse is kept aside, never fails the page."""
    records: list[PowensTransaction] = []
    rejects: list[RejectedRecord] = []
    for item in body["transactions"]:
        try:
            records.append(parse_transaction(item))
        except PowensParseError as exc:
            rejects.append(RejectedRecord(item, raw_transaction_id(item), str(exc)))
    total = body.get("total") if isinstance(body.get("total"), int) else None
    links = body.get("_links")
    has_next = isinstance(links, dict) and links.get("next") is not None
    return TransactionPage(
        records,
        rejects,
        total,
        server_time,
        has_next,
        _iso_day(body.get("first_date")),
        _iso_day(body.get("last_date")),
    )


def _iso_day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield `items` while a thread produces up to `depth` ahead, so waiting on Powens overlaps
    with parsing and loading; errors re-raise in the consumer."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:
            put((_DONE, exc))

    worker = threading.Thread(target=produce, name="powens-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=30)
