"""A labelled family for measuring the overview's insights: every recurring commitment, anomaly
and exchange rate in its history is planted, so detection can be scored against the truth.

The world keeps the base family's accounts (the app serves it unchanged) but generates its own
rows: random card spending and irregular gifts to private persons as noise, the planted recurring
series of `labelled_series.py`, planted anomalies in the last 60 days, and card payments in USD
carrying `original_value` at a known rate per month. `labels()` returns the truth as of the
clock. Imports only numpy, the standard library and the emulator itself.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from powens_emulator import generation
from powens_emulator.catalog import Merchant, T
from powens_emulator.clock import EPOCH, day_number
from powens_emulator.data import FamilyWorld
from powens_emulator.generation import Row
from powens_emulator.labelled_series import NOISE_PERSONS, person, planted_series, usd_rate

__all__ = ["LabelledFamilyWorld", "usd_rate"]

ANOMALY_WINDOW_DAYS = 60


class LabelledFamilyWorld(FamilyWorld):
    """The base family's accounts with planted, labelled history (see the module docstring)."""

    def __init__(self, *, seed: int, transactions: int, history_days: int, now: datetime) -> None:
        self.as_of = now.date()
        self.series = planted_series(self.as_of)
        self.anomalies: list[dict[str, Any]] = []
        self._anomaly_rng = np.random.default_rng(seed + 7919)
        super().__init__(seed=seed, transactions=transactions, history_days=history_days, now=now)

    def fixed_rows_estimate(self) -> int:
        return int(self.history_days / 30.4 * 24)

    def initial_deletions(self) -> None:
        """No deletions: the labels refer to rows as generated."""

    def advance(self, days: int) -> dict[str, Any]:
        raise NotImplementedError("the labelled family is a fixed history; its clock stays put")

    def generate_days(self, first: int, last: int) -> int:
        """The planted series, the noise, the USD payments and the anomalies of days
        [first, last], with the base family's random card spending (without its fx)."""
        first_day, last_day = EPOCH + timedelta(days=first), EPOCH + timedelta(days=last)
        rows: list[Row] = []
        for series in self.series:
            for due in series.dates(first_day, last_day):
                cents = series.amount(due)
                if series.noise_pct:
                    wobble = self._anomaly_rng.uniform(-series.noise_pct, series.noise_pct)
                    cents = round(cents * (1 + wobble))
                merchant = self.merchant_index(series.merchant)
                day, kind = day_number(due), T[series.kind]
                rows.append((series.account, day, cents, kind, merchant, 0))
                if series.label.endswith("(own account)"):
                    rows.append((103, day, -cents, kind, merchant, 0))
                if series.kind == "loan_repayment":
                    rows.append((105, day, -cents, kind, merchant, 0))
        rows += self._noise_transfers(first, last)
        rows += self._usd_card_payments(first, last)
        planted = self._planted_anomalies(first_day, last_day)
        first_planted = len(rows)
        rows += [row for row, _ in planted]
        spend = generation.card_spending(self, first, last)
        spend["fx"] = np.zeros(len(spend["day"]), np.int64)
        ids = generation.append_generated(self, rows, spend)
        planted_ids = ids[first_planted : first_planted + len(planted)].tolist()
        kinds = {row_id: kind for row_id, (_, kind) in zip(planted_ids, planted, strict=True)}
        self.anomalies += [{"id": row_id, "kind": kinds[row_id]} for row_id in sorted(kinds)]
        return len(ids)

    def _noise_transfers(self, first: int, last: int) -> list[Row]:
        """Irregular gifts to two private persons: the same payees, no cadence, no fixed amount."""
        rng = np.random.default_rng(self.seed + first)
        out = []
        for payee in NOISE_PERSONS:
            days = rng.integers(first, last + 1, rng.poisson((last - first + 1) / 20))
            for day in days:
                cents = -int(rng.integers(20, 300)) * 100
                out.append((102, int(day), cents, T["transfer"], self.merchant_index(payee), 0))
        return out

    def _usd_card_payments(self, first: int, last: int) -> list[Row]:
        """About two card payments a month made in USD on the EUR card, at `usd_rate`."""
        rng = np.random.default_rng(self.seed + 31 * first)
        merchant = self.merchant_index(Merchant("CB AMAZON COM USD", "AMAZON"))
        out = []
        for day in rng.integers(first, last + 1, rng.poisson((last - first + 1) / 15)):
            usd = int(rng.integers(2000, 9000))
            eur = round(usd * usd_rate(EPOCH + timedelta(days=int(day))))
            out.append((104, int(day), -eur, T["deferred_card"], merchant, usd))
        return out

    def _planted_anomalies(self, first: date, last: date) -> list[tuple[Row, str]]:
        """Two of each kind in the last 60 days before the clock (never on the last two days,
        which are still pending for cards)."""
        window_start = self.as_of - timedelta(days=ANOMALY_WINDOW_DAYS)
        rng = self._anomaly_rng
        out: list[tuple[Row, str]] = []

        def day_in_window(index: int) -> date:
            span = (ANOMALY_WINDOW_DAYS - 4) // 8
            return window_start + timedelta(days=int(index * span + rng.integers(0, span)))

        plans: list[tuple[date, int, int, Merchant, int, str]] = []
        for i in range(2):
            big = Merchant("CB CARREFOUR MARKET", "CARREFOUR MARKET")
            plans.append((day_in_window(i), 101, -int(rng.integers(65000, 95000)), big, T["card"],
                          "amount_far_above_category"))  # fmt: skip
            stranger = person(f"M NOUVEAU BENEFICIAIRE {i}", f"new{i}{self.seed}")
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
                row = (account, day_number(day), cents, kind, self.merchant_index(merchant), 0)
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
