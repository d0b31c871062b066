"""Paging through a Powens list: follow `_links.next.href` until it is null, or page by `offset`
when a list carries no `_links`; refuse a `next` that would leak the bearer or loop; read ahead
in a thread.

A `next` on another scheme or host than the base URL would send the bearer token there; one
already followed means the chain loops. Both stop the chain with an invalid-response error. A
relative `next` (S6 saw `/2.0/...` paths) is resolved against the base URL first (facts §7).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from pfo_pipeline.powens.errors import PowensError, PowensInvalidResponseError, is_no_account
from pfo_pipeline.powens.responses import require_list

T = TypeVar("T")
_DONE = object()

# (url, params, operation) -> (decoded body, Powens' clock at the answer)
PageGetter = Callable[[str, dict[str, Any] | None, str], tuple[Any, datetime | None]]


class NextLinkGuard:
    """Checks each `_links.next` of one chain: same origin as the base URL, never seen before."""

    def __init__(self, origin: tuple[str, str], operation: str) -> None:
        self._origin = origin
        self._base = f"{origin[0]}://{origin[1]}/"
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
        href = urljoin(self._base, href)  # a relative path stays on the base URL's host
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


# A chain longer than this is refused (S6: cap the number of pages): 100 million rows at the
# largest page Powens serves, far past any family's history, yet a bound on a looping server.
MAX_CHAIN_PAGES = 100_000


def follow_pages(
    get: PageGetter,
    first_url: str,
    params: dict[str, Any],
    list_key: str,
    guard: NextLinkGuard,
    operation: str,
    limit: int,
) -> Iterator[tuple[dict[str, Any], datetime | None, bool]]:
    """Raw pages of one chain, each with whether the chain goes on after it.

    - A page carrying `_links`: follow `_links.next.href` until it is null or absent (facts §7:
      relational pagination, observed live by S6, S8, S9).
    - A page without `_links` (S3's lists document only `offset`/`limit`, facts §7): ask the next
      `offset` while pages come back full (as many rows as `limit`); a short or empty page ends it.
    - A listing that ends with fewer rows served than the `total` it announced on every page is
      an invalid response, never a short load. (When `total` changed between pages the listing
      moved while it was read: the sync holds its cursor instead, `ledger/cursor_rule.py`.)
    - A 4xx `noAccount` on the first request is an empty listing (S3 `NoAccountError`, facts §10).
    """
    url, query = first_url, dict(params)
    offset = int(params.get("offset", 0))
    served, pages = 0, 0
    totals: set[int] = set()
    previous_ids: list[Any] | None = None
    while True:
        try:
            body, clock = get(url, query, operation)
        except PowensError as exc:
            if pages == 0 and is_no_account(exc):
                return
            raise
        rows = require_list(body, list_key, operation)
        pages += 1
        served += len(rows)
        total = body.get("total")
        if type(total) is int:
            totals.add(total)
        if "_links" in body:
            href = guard.next_link(body)
            more = href is not None
        else:
            href = None
            more = len(rows) >= limit
            ids = [row.get("id") if isinstance(row, dict) else None for row in rows]
            if more and ids == previous_ids:
                raise PowensInvalidResponseError(
                    f"offset {offset} served the previous page again: Powens ignored `offset` "
                    "(facts §7)",
                    operation=operation,
                )
            previous_ids = ids
        if not more and len(totals) == 1 and served < next(iter(totals)):
            raise PowensInvalidResponseError(
                f"the listing ended after {served} rows although every page announced "
                f"total={next(iter(totals))} (facts §7); refusing a short load",
                operation=operation,
            )
        if more and pages >= MAX_CHAIN_PAGES:
            raise PowensInvalidResponseError(
                f"more than {MAX_CHAIN_PAGES} pages in one chain (facts §7: pages are capped)",
                operation=operation,
            )
        yield body, clock, more
        if not more:
            return
        if href is not None:
            url, query = href, None
        else:
            offset += len(rows)
            url, query = first_url, {**params, "offset": offset}


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
