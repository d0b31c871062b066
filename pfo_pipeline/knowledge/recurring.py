"""Recurring commitments (salary, rent, subscriptions, loans, insurance, transfers to savings)
found in booked history, with the next expected date and amount.

Pure Python over PII-free rows of `analytics.fct_payee_transactions`. A series is one account's
payments to or from one payee in one direction and currency, of similar amounts, at a steady
cadence. Due dates are modelled as a nominal day of the month (clamped to short months, so "the
31st" is the month's last day) moved off weekends forwards or backwards, which is how direct
debits and month-end salaries land; weekly series keep their weekday. Bank holidays are not
modelled: a holiday shift counts as a late day within the tolerance.
"""

from __future__ import annotations

import calendar
import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from statistics import median

WEEKLY, MONTHLY, QUARTERLY, YEARLY = "weekly", "monthly", "quarterly", "yearly"
# cadence: (interval band in days, fewest occurrences, months per step, grace days before "missed")
CADENCES: dict[str, tuple[tuple[int, int], int, int, int]] = {
    WEEKLY: ((5, 9), 4, 0, 2),
    MONTHLY: ((25, 36), 3, 1, 4),
    QUARTERLY: ((80, 100), 3, 3, 7),
    YEARLY: ((350, 380), 2, 12, 10),
}


@dataclass(frozen=True)
class Payment:
    account: str  # alias, e.g. "checking 1"
    payee_key: str
    payee_label: str
    currency: str
    category: str
    day: date
    amount: Decimal
    transaction_id: str = ""


@dataclass(frozen=True)
class RecurringSeries:
    account: str
    payee_key: str
    payee_label: str
    currency: str
    category: str
    cadence: str
    occurrences: int
    typical_amount: Decimal
    last_date: date
    next_date: date
    next_amount: Decimal
    missed_date: date | None  # a due date that passed without a payment
    previous_amount: Decimal | None  # the level before a change of amount
    changed_since: date | None
    transaction_ids: tuple[str, ...]

    @property
    def amount_changed(self) -> bool:
        return self.previous_amount is not None


@dataclass(frozen=True)
class RecurringSettings:
    amount_tolerance: float = 0.05  # consecutive payments within 5 % are "the same amount"
    cluster_gap: float = 0.25  # amounts more than 25 % apart are different series
    min_share_on_cadence: float = 0.75
    max_others_per_occurrence: int = 2  # the payee's other payments over the series' span


def _month_add(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


def _on_day(year: int, month: int, dom: int) -> date:
    return date(year, month, min(dom, calendar.monthrange(year, month)[1]))


def _shift(day: date, forward: bool) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1 if forward else -1)
    return day


def _nominals(day: date) -> list[tuple[int, bool | None, tuple[int, int]]]:
    """(day of month, shift direction or None when unshifted, (year, month)) that explain `day`."""
    out: list[tuple[int, bool | None, tuple[int, int]]] = []

    def doms(d: date) -> range:
        last = calendar.monthrange(d.year, d.month)[1]
        return range(d.day, 32) if d.day == last else range(d.day, d.day + 1)

    out += [(dom, None, (day.year, day.month)) for dom in doms(day)]
    if day.weekday() == 0:  # a Monday may be a Saturday or Sunday moved forwards
        for back in (1, 2):
            e = day - timedelta(days=back)
            out += [(dom, True, (e.year, e.month)) for dom in doms(e)]
    if day.weekday() == 4:  # a Friday may be a Saturday or Sunday moved backwards
        for ahead in (1, 2):
            e = day + timedelta(days=ahead)
            out += [(dom, False, (e.year, e.month)) for dom in doms(e)]
    return out


def _calendar_rule(days: list[date]) -> tuple[int, bool, tuple[int, int]]:
    """The nominal day of month and weekend shift explaining most days; the last day's month."""
    scores: Counter[tuple[int, bool]] = Counter()
    for day in days:
        seen: set[tuple[int, bool]] = set()
        for dom, direction, _ in _nominals(day):
            for forward in (True, False) if direction is None else (direction,):
                seen.add((dom, forward))
        scores.update(seen)
    best = max(scores.values())
    dom, forward = min(
        (k for k, v in scores.items() if v == best), key=lambda k: (not k[1], abs(k[0] - 15), k[0])
    )
    last = days[-1]
    month = next(
        (m for d, direction, m in _nominals(last) if d == dom and direction in (None, forward)),
        (last.year, last.month),
    )
    return dom, forward, month


def _due_dates(days: list[date], cadence: str, after: date) -> tuple[date, date]:
    """(the first due date after the last payment, the first due date after `after`)."""
    if cadence == WEEKLY:
        weekday = Counter(d.weekday() for d in days).most_common(1)[0][0]
        first = days[-1] + timedelta(days=1)
        first += timedelta(days=(weekday - first.weekday()) % 7)
        following = first
        while following <= after:
            following += timedelta(days=7)
        return first, following
    step = CADENCES[cadence][2]
    dom, forward, (year, month) = _calendar_rule(days)
    due = []
    for k in range(1, 400):
        y, m = _month_add(year, month, step * k)
        d = _shift(_on_day(y, m, dom), forward)
        if d > days[-1]:
            due.append(d)
        if due and d > after:
            return due[0], d
    raise AssertionError("unreachable: a due date always exists")


def _clusters(payments: list[Payment], gap: float) -> list[list[Payment]]:
    ordered = sorted(payments, key=lambda p: abs(p.amount))
    clusters: list[list[Payment]] = []
    for p in ordered:
        if clusters and abs(p.amount) <= abs(clusters[-1][-1].amount) * Decimal(1 + gap):
            clusters[-1].append(p)
        else:
            clusters.append([p])
    return [sorted(c, key=lambda p: (p.day, p.transaction_id)) for c in clusters]


def _cadence(days: list[date], share: float) -> str | None:
    gaps = [(b - a).days for a, b in itertools.pairwise(days)]
    if not gaps:
        return None
    typical = median(gaps)
    for name, ((low, high), fewest, _, _) in CADENCES.items():
        if low <= typical <= high and len(days) >= fewest:
            on = sum(
                1 for g in gaps if low <= g <= high or (name != WEEKLY and _multiple(g, low, high))
            )
            return name if on >= share * len(gaps) else None
    return None


def _multiple(gap: int, low: int, high: int) -> bool:
    """A gap of two or three periods: a skipped month is still the same commitment."""
    return any(k * low <= gap <= k * high for k in (2, 3))


def _amount_level(amounts: list[Decimal], tolerance: float) -> tuple[Decimal, Decimal | None, int]:
    """(current level, previous level if the amount changed, index where the current began)."""
    last = amounts[-1]
    start = len(amounts) - 1
    while start > 0 and abs(amounts[start - 1] - last) <= abs(last) * Decimal(tolerance) / 2:
        start -= 1
    current = Decimal(median(amounts[start:]))
    if start == 0:
        return current, None, 0
    before = Decimal(median(amounts[:start]))
    if abs(before - current) <= abs(before) * Decimal(tolerance):
        return Decimal(median(amounts)), None, 0
    return current, before, start


def detect_recurring(
    payments: list[Payment], as_of: date, settings: RecurringSettings | None = None
) -> list[RecurringSeries]:
    """Recurring series among booked payments dated on or before `as_of`."""
    settings = settings or RecurringSettings()
    groups: dict[tuple[str, str, str, bool], list[Payment]] = {}
    for p in payments:
        if p.day <= as_of and p.amount != 0:
            groups.setdefault((p.account, p.payee_key, p.currency, p.amount < 0), []).append(p)
    found: list[RecurringSeries] = []
    for group in groups.values():
        for cluster in _clusters(group, settings.cluster_gap):
            series = _series(cluster, as_of, settings)
            if series is not None and _stands_out(cluster, group, settings):
                found.append(series)
    return sorted(found, key=lambda s: (s.next_date, s.account, s.payee_label, s.payee_key))


def _stands_out(cluster: list[Payment], group: list[Payment], settings: RecurringSettings) -> bool:
    """The payee's other payments over the series' span are few: two purchases a year apart at a
    shop paid every week are chance, not a yearly commitment."""
    first, last = cluster[0].day, cluster[-1].day
    others = sum(1 for p in group if first <= p.day <= last) - len(cluster)
    return others <= settings.max_others_per_occurrence * len(cluster)


def _series(
    cluster: list[Payment], as_of: date, settings: RecurringSettings
) -> RecurringSeries | None:
    days = [p.day for p in cluster]
    if len(set(days)) != len(days):  # two payments on one day: not a single commitment
        return None
    cadence = _cadence(days, settings.min_share_on_cadence)
    if cadence is None:
        return None
    amounts = [p.amount for p in cluster]
    steady = sum(
        1
        for a, b in itertools.pairwise(amounts)
        if abs(a - b) <= abs(a) * Decimal(settings.amount_tolerance)
    )
    if steady < settings.min_share_on_cadence * (len(amounts) - 1):
        return None
    grace = CADENCES[cadence][3]
    expected, following = _due_dates(days, cadence, as_of)
    if (as_of - expected).days > 2 * grace + _period_days(cadence):
        return None  # two or more due dates passed without a payment: it has ended
    missed = expected if (as_of - expected).days > grace else None
    level, before, start = _amount_level(amounts, settings.amount_tolerance)
    first = cluster[0]
    return RecurringSeries(
        account=first.account,
        payee_key=first.payee_key,
        payee_label=first.payee_label,
        currency=first.currency,
        category=Counter(p.category for p in cluster).most_common(1)[0][0],
        cadence=cadence,
        occurrences=len(cluster),
        typical_amount=level.quantize(Decimal("0.01")),
        last_date=days[-1],
        next_date=following if missed or expected <= as_of else expected,
        next_amount=amounts[-1] if before is not None else level.quantize(Decimal("0.01")),
        missed_date=missed,
        previous_amount=before.quantize(Decimal("0.01")) if before is not None else None,
        changed_since=days[start] if before is not None else None,
        transaction_ids=tuple(p.transaction_id for p in cluster),
    )


def _period_days(cadence: str) -> int:
    return {WEEKLY: 7, MONTHLY: 31, QUARTERLY: 92, YEARLY: 366}[cadence]


def due_within(
    series: list[RecurringSeries], as_of: date, days: int
) -> list[tuple[date, RecurringSeries]]:
    """Every expected payment in (as_of, as_of + days], weekly series repeated, by date."""
    end = as_of + timedelta(days=days)
    due: list[tuple[date, RecurringSeries]] = []
    for s in series:
        day = s.next_date
        while as_of < day <= end:
            due.append((day, s))
            if s.cadence != WEEKLY:
                break
            day += timedelta(days=7)
    return sorted(due, key=lambda item: (item[0], item[1].account, item[1].payee_label))
