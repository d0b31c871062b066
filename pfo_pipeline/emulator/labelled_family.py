"""A labelled family for measuring the overview's insights: every recurring commitment, anomaly
and exchange rate in its history is planted, so detection can be scored against the truth.

The world keeps the base family's accounts (the app serves it unchanged) but generates its own
rows: random card spending and irregular gifts to private persons as noise, planted recurring
series (month-end and weekend shifts, a price rise, a missed occurrence, weekly, quarterly and
yearly cadences, a second currency), planted anomalies in the last 60 days, and card payments in
USD carrying `original_value` at a known rate per month. `labels()` returns the truth as of the
clock. Imports only numpy, the standard library and the emulator itself.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from pfo_pipeline.emulator.data import EPOCH, FamilyWorld, Merchant, T, _day, _iban

MONTHLY, WEEKLY, QUARTERLY, YEARLY = "monthly", "weekly", "quarterly", "yearly"
STEP_MONTHS = {MONTHLY: 1, QUARTERLY: 3, YEARLY: 12}
ANOMALY_WINDOW_DAYS = 60


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


def _person(name: str, seed: str) -> Merchant:
    return Merchant(f"VIR SEPA {name}", f"VIREMENT {name}", name, _iban("FR", seed))


LANDLORD = _person("M JEAN DUPONT", "landlord")
NANNY = _person("MME SOPHIE LEROY", "nanny")
CHILD = _person("LEA MARTIN", "child")
NOISE_PERSONS = [_person("PAUL BERNARD", "gift1"), _person("CLAIRE PETIT", "gift2")]


def _debit(name: str, country: str = "FR") -> Merchant:
    """A SEPA direct debit from a business (its counterparty label is the business)."""
    return Merchant(f"PRLV SEPA {name}", name, name, _iban(country, name))


def planted_series(as_of: date) -> list[PlantedSeries]:
    """The family's commitments; the price rise and the miss are placed relative to `as_of`."""
    month_start = as_of.replace(day=1)
    rise = (month_start - timedelta(days=50)).replace(day=1)  # three months at the new price
    acme = Merchant(
        "VIR SEPA SALAIRE ACME SAS", "SALAIRE ACME SAS", "ACME SAS", _iban("FR", "acme")
    )
    aphp = Merchant("VIR SEPA SALAIRE AP HP", "SALAIRE AP HP", "AP-HP", _iban("FR", "aphp"))
    globex = Merchant("ACH PAYROLL GLOBEX CORP", "PAYROLL GLOBEX", "GLOBEX CORP")
    savings = Merchant("VIR SEPA VERS LIVRET A", "VIREMENT LIVRET A", "FAMILLE MARTIN",
                       _iban("FR", "a103"))  # fmt: skip
    loan = Merchant("ECHEANCE PRET IMMOBILIER", "ECHEANCE PRET IMMO")
    return [
        PlantedSeries("ACME SAS", acme, 101, 345000, MONTHLY, dom=31, forward=False, kind="transfer"),
        PlantedSeries("AP-HP", aphp, 102, 298000, MONTHLY, dom=1, kind="transfer"),
        PlantedSeries("Globex Corp", globex, 107, 120000, MONTHLY, dom=15, kind="transfer"),
        PlantedSeries("individual", LANDLORD, 101, -120000, MONTHLY, dom=5, kind="transfer"),
        PlantedSeries("Netflix", _debit("NETFLIX COM", "NL"), 102, -1349, MONTHLY, dom=14,
                      rise_from=rise, new_cents=-1549),
        PlantedSeries("Spotify", _debit("SPOTIFY", "SE"), 102, -1099, MONTHLY, dom=20),
        PlantedSeries("EDF", _debit("EDF CLIENTS"), 101, -8940, MONTHLY, dom=5, noise_pct=0.02),
        PlantedSeries("Home loan (bank)", loan, 101, -125000, MONTHLY, dom=10, kind="loan_repayment"),
        PlantedSeries("AXA", _debit("AXA ASSURANCE AUTO"), 101, -18600, QUARTERLY, dom=10, month=1),
        PlantedSeries("MAIF", _debit("MAIF HABITATION"), 101, -42000, YEARLY, dom=20, month=3),
        PlantedSeries("savings 1 (own account)", savings, 101, -30000, MONTHLY, dom=3, kind="transfer"),
        PlantedSeries("individual", NANNY, 102, -15000, WEEKLY, dom=0, kind="transfer"),
        PlantedSeries("Basic-Fit", _debit("BASIC FIT"), 101, -2999, MONTHLY, dom=2),
        PlantedSeries("Canal+", _debit("CANAL PLUS"), 102, -2699, MONTHLY, dom=6,
                      missed=_missed_day(as_of)),
        PlantedSeries("Free Mobile", _debit("FREE MOBILE"), 102, -1999, MONTHLY, dom=12),
        PlantedSeries("individual", CHILD, 102, -5000, MONTHLY, dom=1, kind="transfer"),
        PlantedSeries("DGFiP", _debit("DGFIP IMPOTS"), 101, -21500, MONTHLY, dom=15),
    ]  # fmt: skip


def _missed_day(as_of: date) -> date:
    """Canal+ is due on the 6th: its last due date at least 5 days before `as_of` never came."""
    probe = as_of - timedelta(days=5)
    return PlantedSeries("", Merchant("", ""), 0, 0, MONTHLY, dom=6).dates(
        probe - timedelta(days=40), probe
    )[-1]


def usd_rate(day: date) -> float:
    """EUR per USD in the month of `day`: known, and different every month."""
    return round(0.90 + 0.01 * ((day.year * 12 + day.month) % 5), 4)


class LabelledFamilyWorld(FamilyWorld):
    """The base family's accounts with planted, labelled history (see the module docstring)."""

    def __init__(self, *, seed: int, transactions: int, history_days: int, now: datetime) -> None:
        self.as_of = now.date()
        self.series = planted_series(self.as_of)
        self.anomalies: list[dict[str, Any]] = []
        self._anomaly_rng = np.random.default_rng(seed + 7919)
        super().__init__(seed=seed, transactions=transactions, history_days=history_days, now=now)

    def _fixed_rows_estimate(self) -> int:
        return int(self.history_days / 30.4 * 24)

    def _initial_deletions(self) -> None:
        """No deletions: the labels refer to rows as generated."""

    def advance(self, days: int) -> dict[str, Any]:
        raise NotImplementedError("the labelled family is a fixed history; its clock stays put")

    def _generate_days(self, first: int, last: int) -> int:
        first_day, last_day = EPOCH + timedelta(days=first), EPOCH + timedelta(days=last)
        rows: list[tuple[int, int, int, int, int, int]] = []
        labels: list[str | None] = []
        for series in self.series:
            for due in series.dates(first_day, last_day):
                cents = series.amount(due)
                if series.noise_pct:
                    wobble = self._anomaly_rng.uniform(-series.noise_pct, series.noise_pct)
                    cents = round(cents * (1 + wobble))
                merchant = self._merchant(series.merchant)
                rows.append((series.account, _day(due), cents, T[series.kind], merchant, 0))
                labels.append(None)
                if series.label.endswith("(own account)"):
                    rows.append((103, _day(due), -cents, T[series.kind], merchant, 0))
                    labels.append(None)
                if series.kind == "loan_repayment":
                    rows.append((105, _day(due), -cents, T[series.kind], merchant, 0))
                    labels.append(None)
        rows += self._noise_transfers(first, last)
        rows += self._usd_card_payments(first, last)
        labels += [None] * (len(rows) - len(labels))
        planted = self._planted_anomalies(first_day, last_day)
        rows += [row for row, _ in planted]
        labels += [kind for _, kind in planted]
        spend = self._card_spending(first, last)
        spend["fx"] = np.zeros(len(spend["day"]), np.int64)
        fixed = self._to_columns(rows)
        columns = {k: np.concatenate([fixed[k], spend[k]]) for k in fixed}
        kinds = np.array(labels + [None] * len(spend["day"]), dtype=object)
        order = np.lexsort((columns["account"], columns["day"]))
        columns = {k: v[order] for k, v in columns.items()}
        kinds = kinds[order]
        count = len(columns["day"])
        columns["id"] = np.arange(self.next_id, self.next_id + count, dtype=np.int64)
        self.next_id += count
        for position in np.flatnonzero(kinds != None):  # noqa: E711 (numpy element-wise)
            self.anomalies.append({"id": int(columns["id"][position]), "kind": kinds[position]})
        scrape = columns["day"].astype(np.int64) * 86400 + 86400 + 6 * 3600
        scrape = np.minimum(scrape, int((self.now - datetime(1970, 1, 1)).total_seconds()))
        columns["scraped"] = scrape
        columns["last_update"] = scrape.copy()
        columns["deleted"] = np.full(count, -1, np.int64)
        today = _day(self.now.date())
        carded = np.isin(columns["type"], [T["card"], T["deferred_card"]])
        columns["coming"] = carded & (columns["day"] >= today - 1)
        self.rows.append(columns)
        self.version += 1
        return count

    def _noise_transfers(self, first: int, last: int) -> list[tuple[int, int, int, int, int, int]]:
        """Irregular gifts to two private persons: the same payees, no cadence, no fixed amount."""
        rng = np.random.default_rng(self.seed + first)
        out = []
        for person in NOISE_PERSONS:
            days = rng.integers(first, last + 1, rng.poisson((last - first + 1) / 20))
            for day in days:
                cents = -int(rng.integers(20, 300)) * 100
                out.append((102, int(day), cents, T["transfer"], self._merchant(person), 0))
        return out

    def _usd_card_payments(
        self, first: int, last: int
    ) -> list[tuple[int, int, int, int, int, int]]:
        """About two card payments a month made in USD on the EUR card, at `usd_rate`."""
        rng = np.random.default_rng(self.seed + 31 * first)
        merchant = self._merchant(Merchant("CB AMAZON COM USD", "AMAZON"))
        out = []
        for day in rng.integers(first, last + 1, rng.poisson((last - first + 1) / 15)):
            usd = int(rng.integers(2000, 9000))
            eur = round(usd * usd_rate(EPOCH + timedelta(days=int(day))))
            out.append((104, int(day), -eur, T["deferred_card"], merchant, usd))
        return out

    def _planted_anomalies(
        self, first: date, last: date
    ) -> list[tuple[tuple[int, int, int, int, int, int], str]]:
        """Two of each kind in the last 60 days before the clock (never on the last two days,
        which are still pending for cards)."""
        window_start = self.as_of - timedelta(days=ANOMALY_WINDOW_DAYS)
        rng = self._anomaly_rng
        out: list[tuple[tuple[int, int, int, int, int, int], str]] = []

        def day_in_window(index: int) -> date:
            span = (ANOMALY_WINDOW_DAYS - 4) // 8
            return window_start + timedelta(days=int(index * span + rng.integers(0, span)))

        plans: list[tuple[date, int, int, Merchant, int, str]] = []
        for i in range(2):
            big = Merchant("CB CARREFOUR MARKET", "CARREFOUR MARKET")
            plans.append((day_in_window(i), 101, -int(rng.integers(65000, 95000)), big, T["card"],
                          "amount_far_above_category"))  # fmt: skip
            stranger = _person(f"M NOUVEAU BENEFICIAIRE {i}", f"new{i}{self.seed}")
            plans.append((day_in_window(2 + i), 101, -int(rng.integers(1500, 3000)) * 100,
                          stranger, T["transfer"], "new_payee"))  # fmt: skip
            fee = [Merchant("COMMISSION D INTERVENTION", "COMMISSION D INTERVENTION"),
                   Merchant("AGIOS DEBITEURS", "AGIOS")][i]  # fmt: skip
            plans.append((day_in_window(4 + i), 102, -int(rng.integers(800, 4000)), fee, T["fee"],
                          "new_fee"))  # fmt: skip
            twice = Merchant("CB FNAC PARIS", "FNAC")
            day, cents = day_in_window(6 + i), -int(rng.integers(6000, 15000))
            plans.append((day, 101, cents, twice, T["card"], f"duplicate_first#{i}"))
            plans.append((day + timedelta(days=int(rng.integers(0, 2))), 101, cents, twice,
                          T["card"], f"duplicate_charge#{i}"))  # fmt: skip
        for day, account, cents, merchant, kind, label in plans:
            if first <= day <= last:
                row = (account, _day(day), cents, kind, self._merchant(merchant), 0)
                out.append((row, label))
        return out

    def _anomaly_labels(self) -> list[dict[str, Any]]:
        """One entry per planted anomaly; a duplicate names both charges (`also_id`): on the
        same day either may be called the second."""
        firsts = {a["kind"].split("#")[1]: a["id"] for a in self.anomalies
                  if a["kind"].startswith("duplicate_first#")}  # fmt: skip
        out = []
        for a in self.anomalies:
            kind, _, pair = a["kind"].partition("#")
            if kind == "duplicate_first":
                continue
            out.append({"id": a["id"], "kind": kind, **({"also_id": firsts[pair]} if pair else {})})
        return out

    def labels(self) -> dict[str, Any]:
        """The truth as of the clock: recurring series (with next due date and amount),
        anomalies (Powens transaction ids) and the USD rate."""
        as_of = self.as_of
        series = []
        for s in self.series:
            series.append(
                {
                    "label": s.label,
                    "account_id": s.account,
                    "cadence": s.cadence,
                    "amount": s.amount(as_of) / 100,
                    "next_date": s.next_due(as_of).isoformat(),
                    "price_change": s.rise_from is not None,
                    "missed": s.missed is not None,
                    "currency": self.accounts[s.account].currency,
                }
            )
        return {
            "as_of": as_of.isoformat(),
            "series": series,
            "anomalies": self._anomaly_labels(),
            "usd_rate": usd_rate(as_of),
        }
