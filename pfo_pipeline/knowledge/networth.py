"""Net worth in one reporting currency, the savings rate and months of outflow covered.

Per currency, assets (every account that is not a loan or card) and liabilities (loans, cards)
come from the accounts' balances; the total in the reporting currency converts each currency with
a stated rate: the configured rate table first, else the latest rate observed in Powens data
(`original_value` / `original_currency`) on or before the day, else the currency is left out and
named. Currencies are never added without a rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

CENT = Decimal("0.01")
LIABILITY_TYPES = frozenset({"loan", "card"})
LIQUID_TYPES = frozenset({"checking", "savings", "deposit"})


@dataclass(frozen=True)
class AccountBalance:
    account: str
    account_type: str
    currency: str
    balance: Decimal
    day: date


@dataclass(frozen=True)
class Rate:
    """1 unit of `currency` = `rate` units of the reporting currency."""

    currency: str
    rate: Decimal
    source: str  # "identity", "configured", "observed"
    day: date | None


@dataclass(frozen=True)
class CurrencyPosition:
    currency: str
    assets: Decimal
    liabilities: Decimal
    liquid: Decimal
    rate: Rate | None

    @property
    def net(self) -> Decimal:
        return self.assets + self.liabilities


@dataclass(frozen=True)
class NetWorth:
    as_of: date
    reporting_currency: str
    positions: list[CurrencyPosition]
    unconverted: list[str]

    def _total(self, field: str) -> Decimal:
        return sum(
            (getattr(p, field) * p.rate.rate for p in self.positions if p.rate is not None),
            Decimal(0),
        ).quantize(CENT)

    @property
    def assets(self) -> Decimal:
        return self._total("assets")

    @property
    def liabilities(self) -> Decimal:
        return self._total("liabilities")

    @property
    def liquid(self) -> Decimal:
        return self._total("liquid")

    @property
    def net(self) -> Decimal:
        return self.assets + self.liabilities

    def convert(self, currency: str, amount: Decimal) -> Decimal | None:
        rate = next((p.rate for p in self.positions if p.currency == currency), None)
        return None if rate is None else (amount * rate.rate).quantize(CENT)


def choose_rate(
    currency: str,
    reporting: str,
    configured: dict[str, Decimal],
    observed: list[tuple[date, str, str, Decimal]],
    as_of: date,
) -> Rate | None:
    """The rate for `currency`: identity, configured, else the latest observation on or before
    `as_of` (direct, or the inverse of reporting -> currency)."""
    if currency == reporting:
        return Rate(currency, Decimal(1), "identity", None)
    if currency in configured:
        return Rate(currency, Decimal(configured[currency]), "configured", None)
    best: tuple[date, Decimal] | None = None
    for day, source, target, rate in observed:
        if day > as_of or not rate:
            continue
        if (source, target) == (currency, reporting):
            candidate = (day, Decimal(rate))
        elif (source, target) == (reporting, currency):
            candidate = (day, (Decimal(1) / Decimal(rate)).quantize(Decimal("0.000001")))
        else:
            continue
        if best is None or candidate[0] > best[0]:
            best = candidate
    return Rate(currency, best[1], "observed", best[0]) if best else None


def net_worth(
    balances: list[AccountBalance],
    reporting: str,
    configured: dict[str, Decimal],
    observed: list[tuple[date, str, str, Decimal]],
    as_of: date,
) -> NetWorth:
    positions = []
    for currency in sorted({b.currency for b in balances}):
        mine = [b for b in balances if b.currency == currency]
        positions.append(
            CurrencyPosition(
                currency,
                assets=sum((b.balance for b in mine if b.account_type not in LIABILITY_TYPES), Decimal(0)),
                liabilities=sum((b.balance for b in mine if b.account_type in LIABILITY_TYPES), Decimal(0)),
                liquid=sum((b.balance for b in mine if b.account_type in LIQUID_TYPES), Decimal(0)),
                rate=choose_rate(currency, reporting, configured, observed, as_of),
            )
        )  # fmt: skip
    return NetWorth(as_of, reporting, positions, [p.currency for p in positions if p.rate is None])


def savings_rate(inflow: Decimal, outflow: Decimal) -> Decimal | None:
    """Net over inflow, in percent; None without inflow."""
    if inflow <= 0:
        return None
    return ((inflow - outflow) * 100 / inflow).quantize(Decimal("0.1"))


def months_covered(liquid: Decimal, monthly_outflow: Decimal) -> Decimal | None:
    if monthly_outflow <= 0:
        return None
    return (liquid / monthly_outflow).quantize(Decimal("0.1"))
