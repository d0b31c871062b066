"""The labelled family's planted recurring series: each commitment's cadence, amount and due
dates (month-end and weekend shifts, a price rise, a missed occurrence), the private persons it
pays, and the known USD rate of each month. `labelled_family.py` turns them into rows.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from powens_emulator.catalog import Merchant, iban

MONTHLY, WEEKLY, QUARTERLY, YEARLY = "monthly", "weekly", "quarterly", "yearly"
STEP_MONTHS = {MONTHLY: 1, QUARTERLY: 3, YEARLY: 12}


@dataclass(frozen=True)
class PlantedSeries:
    """A commitment: `dom` (clamped to the month) shifted off weekends `forward` or backward."""

    label: str  # how the overview must name the payee
    merchant: Merchant
    account: int
    cents: int
    cadence: str
    dom: int = 1  # day of month (monthly, quarterly, yearly); weekday 0-6 for weekly
    month: int = 1  # first month of the quarter cycle, or the month of a yearly payment
    forward: bool = True
    kind: str = "order"
    rise_from: date | None = None  # the amount changes to `new_cents` from this day on
    new_cents: int = 0
    missed: date | None = None  # the occurrence that never came (and none after it)
    noise_pct: float = 0.0  # amounts vary by up to this share (utilities)

    def nominal(self, year: int, month: int) -> date:
        return date(year, month, min(self.dom, calendar.monthrange(year, month)[1]))

    def shifted(self, day: date) -> date:
        while day.weekday() >= 5:
            day += timedelta(days=1 if self.forward else -1)
        return day

    def dates(self, first: date, last: date) -> list[date]:
        """Due dates in [first, last], before any miss."""
        out: list[date] = []
        if self.cadence == WEEKLY:
            day = first + timedelta(days=(self.dom - first.weekday()) % 7)
            while day <= last:
                out.append(day)
                day += timedelta(days=7)
        else:
            step = STEP_MONTHS[self.cadence]
            year, month = first.year - 1, self.month
            while (year, month) <= (last.year + 1, 12):
                day = self.shifted(self.nominal(year, month))
                if first <= day <= last:
                    out.append(day)
                month += step
                year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
        return [d for d in out if self.missed is None or d < self.missed]

    def amount(self, day: date) -> int:
        return self.new_cents if self.rise_from and day >= self.rise_from else self.cents

    def next_due(self, after: date) -> date:
        """The first due date after `after`, ignoring the miss (a missed commitment is still due)."""
        return PlantedSeries(**{**self.__dict__, "missed": None}).dates(
            after + timedelta(days=1), after + timedelta(days=400)
        )[0]


def person(name: str, seed: str) -> Merchant:
    return Merchant(f"VIR SEPA {name}", f"VIREMENT {name}", name, iban("FR", seed))


LANDLORD = person("M JEAN DUPONT", "landlord")
NANNY = person("MME SOPHIE LEROY", "nanny")
CHILD = person("LEA MARTIN", "child")
NOISE_PERSONS = [person("PAUL BERNARD", "gift1"), person("CLAIRE PETIT", "gift2")]


def debit(name: str, country: str = "FR") -> Merchant:
    """A SEPA direct debit from a business (its counterparty label is the business)."""
    return Merchant(f"PRLV SEPA {name}", name, name, iban(country, name))


def planted_series(as_of: date) -> list[PlantedSeries]:
    """The family's commitments; the price rise and the miss are placed relative to `as_of`."""
    month_start = as_of.replace(day=1)
    rise = (month_start - timedelta(days=50)).replace(day=1)  # three months at the new price
    acme = Merchant("VIR SEPA SALAIRE ACME SAS", "SALAIRE ACME SAS", "ACME SAS", iban("FR", "acme"))
    aphp = Merchant("VIR SEPA SALAIRE AP HP", "SALAIRE AP HP", "AP-HP", iban("FR", "aphp"))
    globex = Merchant("ACH PAYROLL GLOBEX CORP", "PAYROLL GLOBEX", "GLOBEX CORP")
    savings = Merchant("VIR SEPA VERS LIVRET A", "VIREMENT LIVRET A", "FAMILLE MARTIN",
                       iban("FR", "a103"))  # fmt: skip
    loan = Merchant("ECHEANCE PRET IMMOBILIER", "ECHEANCE PRET IMMO")
    return [
        PlantedSeries("ACME SAS", acme, 101, 345000, MONTHLY, dom=31, forward=False, kind="transfer"),
        PlantedSeries("AP-HP", aphp, 102, 298000, MONTHLY, dom=1, kind="transfer"),
        PlantedSeries("Globex Corp", globex, 107, 120000, MONTHLY, dom=15, kind="transfer"),
        PlantedSeries("individual", LANDLORD, 101, -120000, MONTHLY, dom=5, kind="transfer"),
        PlantedSeries("Netflix", debit("NETFLIX COM", "NL"), 102, -1349, MONTHLY, dom=14,
                      rise_from=rise, new_cents=-1549),
        PlantedSeries("Spotify", debit("SPOTIFY", "SE"), 102, -1099, MONTHLY, dom=20),
        PlantedSeries("EDF", debit("EDF CLIENTS"), 101, -8940, MONTHLY, dom=5, noise_pct=0.02),
        PlantedSeries("Home loan (bank)", loan, 101, -125000, MONTHLY, dom=10, kind="loan_repayment"),
        PlantedSeries("AXA", debit("AXA ASSURANCE AUTO"), 101, -18600, QUARTERLY, dom=10, month=1),
        PlantedSeries("MAIF", debit("MAIF HABITATION"), 101, -42000, YEARLY, dom=20, month=3),
        PlantedSeries("savings 1 (own account)", savings, 101, -30000, MONTHLY, dom=3, kind="transfer"),
        PlantedSeries("individual", NANNY, 102, -15000, WEEKLY, dom=0, kind="transfer"),
        PlantedSeries("Basic-Fit", debit("BASIC FIT"), 101, -2999, MONTHLY, dom=2),
        PlantedSeries("Canal+", debit("CANAL PLUS"), 102, -2699, MONTHLY, dom=6,
                      missed=missed_day(as_of)),
        PlantedSeries("Free Mobile", debit("FREE MOBILE"), 102, -1999, MONTHLY, dom=12),
        PlantedSeries("individual", CHILD, 102, -5000, MONTHLY, dom=1, kind="transfer"),
        PlantedSeries("DGFiP", debit("DGFIP IMPOTS"), 101, -21500, MONTHLY, dom=15),
    ]  # fmt: skip


def missed_day(as_of: date) -> date:
    """Canal+ is due on the 6th: its last due date at least 5 days before `as_of` never came."""
    probe = as_of - timedelta(days=5)
    return PlantedSeries("", Merchant("", ""), 0, 0, MONTHLY, dom=6).dates(
        probe - timedelta(days=40), probe
    )[-1]


def usd_rate(day: date) -> float:
    """EUR per USD in the month of `day`: known, and different every month."""
    return round(0.90 + 0.01 * ((day.year * 12 + day.month) % 5), 4)
