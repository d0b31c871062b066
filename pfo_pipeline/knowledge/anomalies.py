"""Transactions unusual for this family, each with its reason in words.

Pure Python over PII-free rows of `analytics.fct_payee_transactions` plus a few aggregates of the
family's own history (per-category amount ranges, when each payee was first and last paid), so the
yardstick is the family, not a population. Four rules, cheap enough for a million-row ledger:

- amount far above its category's usual range (a multiple of the category's 95th percentile over
  the year before the window, for categories with enough history);
- a first payment to a payee never paid before, above a threshold (once the history is long
  enough for "never" to mean something);
- the same charge twice on the same or the next day (same account, payee and amount, above a
  minimum; a wider window mostly finds coincidences at shops paid every day);
- a fee or interest charge from a payee with no charge in the months before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from pfo_pipeline.knowledge.recurring import Payment

FAR_ABOVE, NEW_PAYEE, DUPLICATE, NEW_FEE = (
    "amount_far_above_category",
    "new_payee",
    "duplicate_charge",
    "new_fee",
)
FEE_CATEGORIES = frozenset({"fees"})


@dataclass(frozen=True)
class AnomalySettings:
    category_multiple: float = 4.0  # x the category's 95th percentile
    category_min_amount: Decimal = Decimal("100")
    category_min_history: int = 20
    new_payee_min_amount: Decimal = Decimal("500")
    new_payee_min_history_days: int = 90
    duplicate_window_days: int = 1  # the same day or the next
    duplicate_min_amount: Decimal = Decimal("20")
    new_fee_quiet_days: int = 180


@dataclass(frozen=True)
class CategoryRange:
    p50: Decimal
    p95: Decimal
    count: int


@dataclass(frozen=True)
class History:
    """What "usual" means for this family, as of the window's start."""

    first_day: date | None  # the family's first known payment
    category_ranges: dict[tuple[str, str], CategoryRange]  # (currency, category) -> debit sizes
    payee_first_seen: dict[str, date]
    payee_last_before: dict[str, date]  # last payment before the window, per payee


@dataclass(frozen=True)
class Anomaly:
    kind: str
    day: date
    account: str
    payee_label: str
    category: str
    currency: str
    amount: Decimal
    reason: str
    transaction_id: str


def detect_anomalies(
    window: list[Payment],
    history: History,
    start: date,
    end: date,
    settings: AnomalySettings | None = None,
) -> list[Anomaly]:
    """Anomalies among the debits dated in [start, end]; `window` may begin a few days earlier
    (the first of a duplicate pair). At most one reason per transaction, the strongest first."""
    s = settings or AnomalySettings()
    found: dict[str, Anomaly] = {}
    ordered = sorted(window, key=lambda p: (p.day, p.transaction_id))
    debits = [p for p in ordered if p.amount < 0]

    def add(p: Payment, kind: str, reason: str) -> None:
        if start <= p.day <= end and p.transaction_id not in found:
            found[p.transaction_id] = Anomaly(kind, p.day, p.account, p.payee_label, p.category,
                                              p.currency, p.amount, reason, p.transaction_id)  # fmt: skip

    last_fee: dict[str, date] = {}
    recent: dict[tuple[str, str, Decimal], date] = {}
    for p in debits:
        size = -p.amount
        key = (p.account, p.payee_key, p.amount)
        seen = recent.get(key)
        duplicate = seen is not None and (p.day - seen).days <= s.duplicate_window_days
        if duplicate and seen is not None and size >= s.duplicate_min_amount:
            gap = (p.day - seen).days
            when = "the same day" if gap == 0 else f"{gap} day{'s' if gap > 1 else ''} earlier"
            add(p, DUPLICATE, f"the same charge of {size} {p.currency} to {p.payee_label} "
                                  f"was already made {when}")  # fmt: skip
        recent[key] = p.day
        first = history.payee_first_seen.get(p.payee_key)
        long_enough = history.first_day is not None and (
            (p.day - history.first_day).days >= s.new_payee_min_history_days
        )
        if first == p.day and long_enough and size >= s.new_payee_min_amount:
            add(p, NEW_PAYEE, f"first ever payment to this payee ({p.payee_label}), "
                              f"{size} {p.currency}, above the {s.new_payee_min_amount} threshold")  # fmt: skip
        if p.category in FEE_CATEGORIES:
            before = max(filter(None, [history.payee_last_before.get(p.payee_key),
                                       last_fee.get(p.payee_key)]), default=None)  # fmt: skip
            quiet = before is None or (p.day - before).days > s.new_fee_quiet_days
            if quiet and long_enough:
                add(p, NEW_FEE, f"a {p.category.replace('_', ' ')} charge of {size} {p.currency} "
                                f"that was not there in the previous {s.new_fee_quiet_days} days")  # fmt: skip
            last_fee[p.payee_key] = p.day
        usual = history.category_ranges.get((p.currency, p.category))
        if (
            usual is not None
            and usual.count >= s.category_min_history
            and size >= s.category_min_amount
            and size > usual.p95 * Decimal(str(s.category_multiple))
        ):
            ratio = (size / usual.p50).quantize(Decimal("0.1")) if usual.p50 else None
            add(p, FAR_ABOVE, f"{size} {p.currency} is far above the usual "
                              f"{p.category.replace('_', ' ')} payment (median {usual.p50}, "
                              f"95 % under {usual.p95}" + (f"; {ratio}x the median)" if ratio else ")"))  # fmt: skip
    return sorted(found.values(), key=lambda a: (a.day, a.account, a.transaction_id))


def window_with_lead(start: date, settings: AnomalySettings | None = None) -> date:
    """Where the rows fed to `detect_anomalies` must begin for duplicates across the start."""
    return start - timedelta(days=(settings or AnomalySettings()).duplicate_window_days)
