"""Pages of transactions straight to JSON bytes: the bytes `orjson.dumps` gives the rows'
`transaction_json` dicts, built column by column instead of one dict per row.

A row's JSON is a dozen fragments, each a function of one column or two (the day and the type,
the amount, the merchant, a timestamp...). Each fragment is encoded once per distinct value, by
orjson itself (so numbers and strings are written exactly as in the dict path) and memoised; a
page is a (rows × fragments) table filled a column at a time and joined once. Rows the malformed
fault or a null-field switch hits take the dict path (`variants.py`); type names and offset
timestamps have memos of their own, so those switches cost nothing per row.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import orjson

from powens_emulator.catalog import CURRENCIES, TYPES
from powens_emulator.clock import fmt_day, fmt_ts
from powens_emulator.data import FamilyWorld
from powens_emulator.shaping import CARD_TYPES, DEFAULT, malformed_kind, transaction_json
from powens_emulator.variants import Variant, with_offset

TAIL = (
    b',"country":null,"comment":null,"id_cluster":null,"id_category":9998,"categories":[],'
    b'"state":"parsed","webid":null,"documents_count":0,"information":{}}'
)
CARD, TRANSFER, OTHER = 0, 1, 2
TYPE_CLASS = np.array(
    [CARD if t in CARD_TYPES else TRANSFER if t == "transfer" else OTHER for t in TYPES], np.int64
)
IS_CARD = np.array([t in CARD_TYPES for t in TYPES])
FRAGMENTS = 15  # columns of a page's table, the row separator included


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


class Memo(dict):
    """A dict that computes a missing value once, with `compute(key)`."""

    def __init__(self, compute: Callable[[Any], bytes]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: Hashable) -> bytes:
        value = self[key] = self.compute(key)
        return value


def _account(account: int) -> bytes:
    return b',"id_account":%d,' % account


def _days(key: int) -> bytes:
    day, kind = divmod(key, 4)
    rdate = fmt_day(day - 1 if kind == CARD else day)
    vdate = fmt_day(day + 1 if kind == TRANSFER else day)
    d = fmt_day(day)
    # A card payment applies on the day it was made (its rdate), as Powens' default date filter
    # (`application_date`) sees it; `date` is the day the bank debited it.
    return (
        f'"application_date":"{rdate}","date":"{d}","rdate":"{rdate}","vdate":"{vdate}",'
        f'"bdate":"{d}","datetime":null,'
    ).encode()


def _scraped(stamp: int) -> bytes:
    return b'"date_scraped":"%s",' % fmt_ts(stamp).encode()


def _updated(stamp: int) -> bytes:
    return b'"last_update":"%s",' % fmt_ts(stamp).encode()


def _scraped_offset(stamp: int) -> bytes:
    return b'"date_scraped":"%s",' % with_offset(fmt_ts(stamp)).encode()


def _updated_offset(stamp: int) -> bytes:
    return b'"last_update":"%s",' % with_offset(fmt_ts(stamp)).encode()


def _deleted_offset(stamp: int) -> bytes:
    if stamp < 0:
        return b'"deleted":null,'
    return b'"deleted":"%s",' % with_offset(fmt_ts(stamp)).encode()


def _value(cents: int) -> bytes:
    value = _json(cents / 100)
    return b'"value":%s,"gross_value":%s,' % (value, value)


def _original(fx: int) -> bytes:
    if not fx:
        return b'"original_value":null,"original_currency":null,'
    return b'"original_value":%s,"original_currency":%s,' % (
        _json(-fx / 100),
        _json(CURRENCIES["USD"]),
    )


def _formatted(cents: int) -> bytes:
    return b'"formatted_value":%s,' % _json(f"{cents / 100:.2f} €".replace(".", ","))


def _coming(coming: bool) -> bytes:
    return b'"coming":true,"active":true,' if coming else b'"coming":false,"active":true,'


def _deleted(stamp: int) -> bytes:
    return b'"deleted":"%s",' % fmt_ts(stamp).encode() if stamp >= 0 else b'"deleted":null,'


class RowEncoder:
    """Encodes rows of one world. Fragments are kept across pages: each is a pure function of its
    key (merchants are only ever appended to the world's list)."""

    def __init__(self, world: FamilyWorld) -> None:
        self.world = world
        self.accounts = Memo(_account)
        self.days = Memo(_days)
        self.scraped = Memo(_scraped)
        self.updated = Memo(_updated)
        self.values = Memo(_value)
        self.originals = Memo(_original)
        self.wordings = Memo(self._wording)
        self.simplified = Memo(lambda merchant: _json(world.merchants[merchant].simplified) + b",")
        self._edited: tuple[int, np.ndarray] = (-1, np.zeros(0, np.int64))
        self.formatted = Memo(_formatted)
        self.comings = Memo(_coming)
        self.deleted = Memo(_deleted)
        self.tails = Memo(self._tail)
        self.offset = (Memo(_scraped_offset), Memo(_updated_offset), Memo(_deleted_offset))
        self.type_names = DEFAULT.type_names

    def _wording(self, key: int) -> bytes:
        """Type, then the merchant's wordings: key = merchant × 16 + type."""
        merchant, kind = divmod(key, 16)
        m = self.world.merchants[merchant]
        return (
            b'"commission":null,"commission_currency":null,"type":%s,"original_wording":%s,'
            b'"simplified_wording":%s,"stemmed_wording":%s,"wording":'
            % (
                _json(self.type_names[kind]),
                _json(m.wording),
                _json(m.simplified),
                _json(m.simplified.lower()),
            )
        )

    def _tail(self, key: int) -> bytes:
        """Card and counterparty: key = (merchant × 2 + is a card) × 2 + is a debit."""
        rest, debit = divmod(key, 2)
        merchant, card = divmod(rest, 2)
        m = self.world.merchants[merchant]
        counterparty = None
        if m.label:
            counterparty = {
                "label": m.label,
                "account_scheme_name": "iban" if m.iban else None,
                "account_identification": m.iban,
                "type": "creditor" if debit else "debtor",
            }
        return b'"card":%s,"counterparty":%s%s' % (
            b'"XXXX4242"' if card else b"null",
            _json(counterparty),
            TAIL,
        )

    def encode(
        self, index: np.ndarray, malformed_rate: float = 0.0, variant: Variant = DEFAULT
    ) -> bytes:
        """`orjson.dumps([transaction_json(world, i, malformed_rate, variant) for i in index])`."""
        world = self.world
        if variant.type_names != self.type_names:
            self.type_names = variant.type_names
            self.wordings = Memo(self._wording)
        scraped, updated, deleted = (
            self.offset if variant.offset_timestamps else (self.scraped, self.updated, self.deleted)
        )
        r = world.rows
        count = len(index)
        if count == 0:
            return b"[]"
        ids = r.id[index]
        kinds = r.type[index].astype(np.int64)
        cents = r.cents[index]
        merchants = r.merchant[index].astype(np.int64)
        table = np.empty((count, FRAGMENTS), dtype=object)
        table[:, 0] = b'{"id":'
        table[:, 1] = orjson.dumps(ids, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
        _fill(table, 2, self.accounts, r.account[index])
        _fill(table, 3, self.days, r.day[index].astype(np.int64) * 4 + TYPE_CLASS[kinds])
        _fill(table, 4, scraped, r.scraped[index])
        _fill(table, 5, updated, r.last_update[index])
        amounts, at = np.unique(cents, return_inverse=True)
        _fill(table, 6, self.values, amounts, at)
        _fill(table, 7, self.originals, r.fx[index])
        _fill(table, 8, self.wordings, merchants * 16 + kinds)
        _fill(table, 9, self.simplified, merchants)
        for n in np.flatnonzero(np.isin(ids, self._edited_ids())).tolist():
            table[n, 9] = _json(world.edited[int(ids[n])]) + b","
        _fill(table, 10, self.formatted, amounts, at)
        _fill(table, 11, self.comings, r.coming[index])
        _fill(table, 12, deleted, r.deleted[index])
        _fill(table, 13, self.tails, (merchants * 2 + IS_CARD[kinds]) * 2 + (cents < 0))
        table[:, 14] = b","
        table[-1, 14] = b"]"
        if malformed_rate > 0 or variant.rate_null_fields > 0 or variant.rate_null_value > 0:
            for n, i in enumerate(ids.tolist()):
                if (
                    malformed_kind(world.seed, malformed_rate, i) is not None
                    or variant.nulls_fields("transaction", i)
                    or variant.nulls_value(i)
                ):
                    table[n, :-1] = b""
                    body = transaction_json(world, int(index[n]), malformed_rate, variant)
                    table[n, 0] = _json(body)
        return b"[" + b"".join(table.ravel().tolist())

    def _edited_ids(self) -> np.ndarray:
        """Ids of rows whose wording the bank changed (edits bump the world's version)."""
        if self._edited[0] != self.world.version:
            self._edited = (self.world.version, np.fromiter(self.world.edited, np.int64))
        return self._edited[1]


def _fill(
    table: np.ndarray, column: int, memo: Memo, keys: np.ndarray, at: np.ndarray | None = None
) -> None:
    """Column `column` of the table: each row's fragment for its key, each distinct key encoded
    once (`keys` are the distinct keys already when `at` maps the rows to them)."""
    if at is None:
        keys, at = np.unique(keys, return_inverse=True)
    fragments = np.empty(len(keys), dtype=object)
    fragments[:] = [memo[key] for key in keys.tolist()]
    table[:, column] = fragments[at]
