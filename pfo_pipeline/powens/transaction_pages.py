"""One parsed page of a transactions listing: its records, the records that did not parse (kept
whole for the quarantine), and what the page says about the listing (`total`, the announced date
range, whether the chain goes on), which the sync reads to tell whether the listing moved.

A record whose only fault is a null `value` is not malformed: S3 marks `Transaction.value`
nullable (facts §1, §8), so it is an incomplete row Powens has yet to fill. It is quarantined as
held back, with its `last_update`, so the cursor stays before it and the next sync reads it
again (`ledger/cursor_rule.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pfo_pipeline.powens.errors import PowensParseError
from pfo_pipeline.powens.models import PowensTransaction
from pfo_pipeline.powens.scalars import parse_datetime
from pfo_pipeline.powens.transaction_parsing import parse_transaction, raw_transaction_id

NULL_VALUE_REASON = (
    "value: null (S3 `Transaction.value` is nullable: Powens sent no amount yet); held back and "
    "read again at the next sync"
)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record Powens sent that could not be parsed: kept whole for the quarantine."""

    raw: Any = field(repr=False)
    external_id: str | None
    reason: str
    # An incomplete record to read again (null `value`), and its `last_update` when readable.
    held: bool = False
    last_update: datetime | None = None


@dataclass(slots=True)
class TransactionPage:
    records: list[PowensTransaction]
    rejects: list[RejectedRecord]
    total: int | None
    # Powens' clock when it answered (its `Date` header, as naive Europe/Paris like `last_update`).
    server_time: datetime | None = None
    # The chain goes on after this page (a `_links.next`, or a full page when paging by offset).
    has_next: bool = False
    # The user's whole date range as Powens announces it (`first_date`/`last_date`).
    first_date: date | None = None
    last_date: date | None = None

    @property
    def size(self) -> int:
        """Rows the page carried, parsed or not."""
        return len(self.records) + len(self.rejects)


def transaction_page(
    body: dict[str, Any], server_time: datetime | None, has_next: bool
) -> TransactionPage:
    """Parse one page; a record that does not parse is kept aside, never fails the page."""
    records: list[PowensTransaction] = []
    rejects: list[RejectedRecord] = []
    for item in body["transactions"]:
        try:
            records.append(parse_transaction(item))
        except PowensParseError as exc:
            rejects.append(_rejected(item, exc))
    total = body.get("total")
    return TransactionPage(
        records,
        rejects,
        total if type(total) is int else None,
        server_time,
        has_next,
        _iso_day(body.get("first_date")),
        _iso_day(body.get("last_date")),
    )


def _rejected(item: Any, exc: PowensParseError) -> RejectedRecord:
    external_id = raw_transaction_id(item)
    if exc.field == "value" and isinstance(item, dict) and item.get("value", "") is None:
        try:
            stamp = parse_datetime(item.get("last_update"), "last_update")
        except PowensParseError:
            stamp = None
        return RejectedRecord(item, external_id, NULL_VALUE_REASON, held=True, last_update=stamp)
    return RejectedRecord(item, external_id, str(exc))


def _iso_day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
