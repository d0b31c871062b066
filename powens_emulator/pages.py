"""Transactions lists: the query a request asks for, the matching rows in Powens' order (date desc,
id desc), and the page's JSON body."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import orjson

from powens_emulator.clock import day_number, fmt_day, parse_day, parse_ts
from powens_emulator.data import FamilyWorld
from powens_emulator.encoding import IS_CARD, RowEncoder
from powens_emulator.shaping import DEFAULT
from powens_emulator.variants import Variant

MAX_LIMIT = 1000
CACHE_SIZE = 256  # filters whose matching rows are kept...
CACHE_ROWS = 8_000_000  # ...as long as they hold no more row indexes than this (64 MB)


class QueryError(ValueError):
    """A transactions query Powens refuses with a 400; `code` is its error code."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code


@dataclass(frozen=True)
class Filter:
    """Which rows a list shows: one user's (or one of their accounts'), optionally deleted ones,
    updated after `last_update`, dated within [min_day, max_day] by `by` (Powens' `filter`:
    `application_date` unless the client asks for `date`)."""

    user: int
    account: int | None = None
    include_all: bool = False
    last_update: int | None = None
    min_day: int | None = None
    max_day: int | None = None
    by: str = "application_date"


DATE_FILTERS = ("application_date", "date")


@dataclass(frozen=True)
class TransactionQuery:
    filter: Filter
    limit: int
    offset: int

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, str],
        user: int,
        account: int | None = None,
        *,
        default_min_day: int | None = None,
    ) -> TransactionQuery:
        """The query of a request; `default_min_day` is the lower bound a list without `min_date`
        gets (the `month_window_without_min_date` switch: S2's "last month" default)."""
        if "limit" not in params:
            raise QueryError("missingParameter", "limit is required")
        try:
            limit = int(params["limit"])
            offset = int(params.get("offset", "0"))
            last_update = parse_ts(params.get("last_update"))
            lo = parse_day(params.get("min_date"), "min")
            hi = parse_day(params.get("max_date"), "max")
        except ValueError as exc:
            raise QueryError("invalidValue", str(exc)) from None
        if lo is None and "min_date" not in params:
            lo = default_min_day
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise QueryError("invalidValue", f"limit must be between 1 and {MAX_LIMIT}")
        by = params.get("filter", "application_date")
        if by not in DATE_FILTERS:
            raise QueryError("invalidValue", f"filter must be one of {', '.join(DATE_FILTERS)}")
        return cls(Filter(user, account, "all" in params, last_update, lo, hi, by), limit, offset)


class TransactionIndex:
    """Row indexes per filter, in Powens' order, cached until the world changes (its version):
    a client paging through many filters at once (date windows, accounts) gets each page without
    a pass over every row. Callers hold the world's lock."""

    def __init__(self, world: FamilyWorld) -> None:
        self.world = world
        self.encoder = RowEncoder(world)
        self._matching: OrderedDict[Filter, tuple[int, np.ndarray]] = OrderedDict()
        self._owned: dict[tuple[int, int | None], tuple[int, np.ndarray]] = {}
        self._dates: dict[tuple[int, int | None], tuple[int, str | None, str | None]] = {}

    def owned(self, user: int, account: int | None) -> np.ndarray:
        """Mask of the user's rows (or of one of their accounts'); do not modify it."""
        key, world = (user, account), self.world
        cached = self._owned.get(key)
        if cached is not None and cached[0] == world.version:
            return cached[1]
        accounts = [account] if account is not None else world.user_account_ids(user)
        mask = np.isin(world.rows.account, accounts)
        self._owned[key] = (world.version, mask)
        return mask

    def matching(self, where: Filter) -> np.ndarray:
        world = self.world
        cached = self._matching.get(where)
        if cached is not None and cached[0] == world.version:
            self._matching.move_to_end(where)
            return cached[1]
        r = world.rows
        mask = self.owned(where.user, where.account).copy()
        if not where.include_all:
            mask &= r.deleted < 0
        if where.last_update is not None:
            mask &= r.last_update > where.last_update
        if where.min_day is not None or where.max_day is not None:
            days = r.day if where.by == "date" else r.day - IS_CARD[r.type]  # application dates
            if where.min_day is not None:
                mask &= days >= where.min_day
            if where.max_day is not None:
                mask &= days <= where.max_day
        index = np.flatnonzero(mask)
        order = np.lexsort((-r.id[index], -r.day[index].astype(np.int64)))
        index = index[order]
        self._matching[where] = (world.version, index)
        self._matching.move_to_end(where)
        held = sum(len(rows) for _, rows in self._matching.values())
        while len(self._matching) > 1 and (len(self._matching) > CACHE_SIZE or held > CACHE_ROWS):
            _, (_, dropped) = self._matching.popitem(last=False)  # the least recently used
            held -= len(dropped)
        return index

    def available_dates(self, user: int, account: int | None) -> tuple[str | None, str | None]:
        """`first_date`, `last_date`: the oldest and newest dates of the user's (or account's)
        transactions, whatever the filters."""
        key = (user, account)
        cached = self._dates.get(key)
        if cached is not None and cached[0] == self.world.version:
            return cached[1], cached[2]
        days = self.world.rows.day[self.owned(user, account)]
        first = fmt_day(days.min()) if len(days) else None
        last = fmt_day(days.max()) if len(days) else None
        self._dates[key] = (self.world.version, first, last)
        return first, last


@dataclass(frozen=True)
class ListShape:
    """How a list page is shaped: with `_links` (observed live, facts §7) and `total` (S2), or
    without either (S3 documents neither)."""

    links: bool = True
    total: bool = True


def page_body(
    index: TransactionIndex,
    query: TransactionQuery,
    malformed_rate: float,
    self_href: str,
    href: Callable[[int], str],
    variant: Variant = DEFAULT,
    shape: ListShape = ListShape(),
) -> bytes:
    """One page of a transactions list, as Powens' JSON envelope; `href(offset)` is the URL of
    the same list at another offset.

    S3's `DateBoundedList` requires all four dates as dates: an empty page reports the window it
    was asked for (its bounds, else the user's announced range, else today), and a user with no
    transactions today's date as `first_date`/`last_date` (what Powens sends there is not
    documented: docs/powens-api.md §13)."""
    world = index.world
    rows = index.matching(query.filter)
    offset, limit, total = query.offset, query.limit, len(rows)
    page = rows[offset : offset + limit]
    items = orjson.Fragment(index.encoder.encode(page, malformed_rate, variant))
    today = fmt_day(day_number(world.now.date()))
    first, last = index.available_dates(query.filter.user, query.filter.account)
    first, last = first or today, last or today
    result_days = world.rows.day[page]
    if len(result_days):
        low, high = fmt_day(result_days.min()), fmt_day(result_days.max())
    else:
        lo, hi = query.filter.min_day, query.filter.max_day
        low = fmt_day(lo) if lo is not None else first
        high = fmt_day(hi) if hi is not None else last
    body: dict = {
        "transactions": items,
        "first_date": first,
        "last_date": last,
        "result_min_date": low,
        "result_max_date": high,
    }
    if shape.total:
        body["total"] = total
    if shape.links:
        body["_links"] = {
            "self": {"href": self_href},
            "next": {"href": href(offset + limit)} if offset + limit < total else None,
            "prev": {"href": href(max(0, offset - limit))} if offset > 0 else None,
        }
    return orjson.dumps(body)
