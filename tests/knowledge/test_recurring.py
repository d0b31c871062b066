"""Recurring-series detection on its own (pure Python, no lake): the calendar rules behind next
dates, and what must not be taken for a commitment."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from pfo_pipeline.knowledge.recurring import Payment, detect_recurring, due_within


def pay(days: list[date], amounts: list[str] | str, payee: str = "m-x") -> list[Payment]:
    values = amounts if isinstance(amounts, list) else [amounts] * len(days)
    return [
        Payment("checking 1", payee, "X", "EUR", "other", d, Decimal(a), f"t{i}")
        for i, (d, a) in enumerate(zip(days, values, strict=True))
    ]


def shifted(day: date, forward: bool) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1 if forward else -1)
    return day


def test_last_business_day_salary_and_the_31st_clamped_and_moved_forwards() -> None:
    month_ends = [date(2025, m, 1) - timedelta(days=1) for m in range(2, 13)] + [
        date(2025, 12, 31), date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)
    ]  # fmt: skip
    salary = pay([shifted(d, forward=False) for d in month_ends], "3450.00", "m-salary")
    rent = pay([shifted(d, forward=True) for d in month_ends], "-900.00", "p-rent")
    found = {s.payee_key: s for s in detect_recurring(salary + rent, date(2026, 4, 30))}
    assert found["m-salary"].next_date == date(2026, 5, 29)  # Sunday 31 May -> Friday
    assert found["p-rent"].next_date == date(2026, 6, 1)  # Sunday 31 May -> Monday 1 June
    assert found["m-salary"].cadence == found["p-rent"].cadence == "monthly"
    assert found["m-salary"].missed_date is None and not found["m-salary"].amount_changed


def test_a_price_rise_and_a_missed_payment_are_flagged() -> None:
    days = [shifted(date(2025, m, 14), True) for m in range(1, 13)] + [
        shifted(date(2026, m, 14), True) for m in (1, 2, 3)
    ]
    amounts = ["-13.49"] * 12 + ["-15.49"] * 3
    (series,) = detect_recurring(pay(days, amounts), date(2026, 4, 28))
    assert series.previous_amount == Decimal("-13.49") and series.next_amount == Decimal("-15.49")
    assert series.changed_since == date(2026, 1, 14)
    assert series.missed_date == date(2026, 4, 14)
    assert series.next_date == date(2026, 5, 14)


def test_weekly_quarterly_and_yearly_cadences_and_due_dates() -> None:
    mondays = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(16)]
    quarters = [shifted(date(y, m, 10), True) for y in (2025, 2026) for m in (1, 4, 7, 10)][:6]
    years = [shifted(date(y, 3, 20), True) for y in (2024, 2025, 2026)]
    found = detect_recurring(
        pay(mondays, "-150.00", "p-nanny") + pay(quarters, "-186.00", "m-axa")
        + pay(years, "-420.00", "m-maif"),
        date(2026, 4, 20),
    )  # fmt: skip
    by_key = {s.payee_key: s for s in found}
    assert by_key["p-nanny"].cadence == "weekly" and by_key["p-nanny"].next_date == date(
        2026, 4, 27
    )
    assert by_key["m-axa"].cadence == "quarterly" and by_key["m-axa"].next_date == date(2026, 7, 10)
    assert by_key["m-maif"].cadence == "yearly" and by_key["m-maif"].next_date == date(2027, 3, 22)
    due = due_within(found, date(2026, 4, 20), 30)
    assert [d for d, s in due if s.payee_key == "p-nanny"] == [
        date(2026, 4, 27), date(2026, 5, 4), date(2026, 5, 11), date(2026, 5, 18)
    ]  # fmt: skip


def test_random_spending_and_ended_series_are_not_commitments() -> None:
    rng = np.random.default_rng(3)
    days = sorted({date(2025, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 480, 80)})
    amounts = [f"-{a:.2f}" for a in rng.lognormal(np.log(40), 0.45, len(days))]
    ended = pay([date(2025, m, 5) for m in range(1, 10)], "-30.00", "m-gym")  # stopped in September
    assert detect_recurring(pay(days, amounts, "m-shop") + ended, date(2026, 4, 30)) == []
