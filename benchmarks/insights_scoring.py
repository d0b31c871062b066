"""Score the overview's insights against a labelled family's truth (shared by the benchmark and
the tests): precision and recall of recurring series, next-date and flag accuracy, anomaly recall
and the share of flagged items that are false, and the exchange rate used."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from powens_emulator.labelled_family import usd_rate


@dataclass
class Score:
    series_truth: int = 0
    series_found: int = 0
    series_matched: int = 0
    next_date_right: int = 0
    next_amount_right: int = 0
    flags_right: int = 0
    anomalies_truth: int = 0
    anomalies_flagged: int = 0
    anomalies_found: int = 0  # planted and flagged
    anomaly_kind_right: int = 0
    rate_right: bool = True
    misses: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for name in ("series_truth", "series_found", "series_matched", "next_date_right",
                     "next_amount_right", "flags_right", "anomalies_truth", "anomalies_flagged",
                     "anomalies_found", "anomaly_kind_right"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rate_right = self.rate_right and other.rate_right
        self.misses += other.misses

    @property
    def series_precision(self) -> float:
        return self.series_matched / self.series_found if self.series_found else 0.0

    @property
    def series_recall(self) -> float:
        return self.series_matched / self.series_truth if self.series_truth else 0.0

    @property
    def anomaly_recall(self) -> float:
        return self.anomalies_found / self.anomalies_truth if self.anomalies_truth else 0.0

    @property
    def anomaly_false_share(self) -> float:
        flagged = self.anomalies_flagged
        return (flagged - self.anomalies_found) / flagged if flagged else 0.0

    def lines(self) -> list[str]:
        return [
            f"recurring: precision {self.series_precision:.3f}, recall {self.series_recall:.3f} "
            f"({self.series_matched} of {self.series_truth} planted, {self.series_found} found)",
            f"  next date exact {self.next_date_right}/{self.series_matched}, next amount "
            f"{self.next_amount_right}/{self.series_matched}, missed/changed flags "
            f"{self.flags_right}/{self.series_matched}",
            f"anomalies: recall {self.anomaly_recall:.3f} ({self.anomalies_found} of "
            f"{self.anomalies_truth}), false {self.anomaly_false_share:.3f} of "
            f"{self.anomalies_flagged} flagged, reason kind right {self.anomaly_kind_right}",
            f"exchange rate as observed: {self.rate_right}",
        ]


def score(labels: dict[str, Any], summary: dict[str, Any], ids: dict[int, str]) -> Score:
    """`summary`: the overview's JSON for a period holding the planted anomalies (the quarter);
    `ids`: Powens transaction id -> canonical transaction id."""
    result = Score()
    truth = list(labels["series"])
    result.series_truth = len(truth)
    result.series_found = len(summary["commitments"])
    for found in summary["commitments"]:
        amount = Decimal(found["typical_amount"])
        match = next(
            (t for t in truth
             if t["label"] == found["payee"] and t["cadence"] == found["cadence"]
             and t["currency"] == found["currency"]
             and abs(amount - Decimal(str(t["amount"]))) <= abs(Decimal(str(t["amount"]))) / 10),
            None,
        )  # fmt: skip
        if match is None:
            result.misses.append(f"unplanted series {found['payee']} {found['cadence']} {amount}")
            continue
        truth.remove(match)
        result.series_matched += 1
        result.next_date_right += found["next_date"] == match["next_date"]
        expected = Decimal(str(match["amount"]))
        result.next_amount_right += abs(Decimal(found["next_amount"]) - expected) <= abs(
            expected
        ) * Decimal("0.03")
        flags = (found["missed_date"] is not None, found["previous_amount"] is not None)
        result.flags_right += flags == (match["missed"], match["price_change"])
        if found["next_date"] != match["next_date"] or flags != (
            match["missed"],
            match["price_change"],
        ):
            result.misses.append(f"{found['payee']}: found {found} expected {match}")
    result.misses += [f"planted series not found: {t}" for t in truth]
    planted = {ids[a["id"]]: a for a in labels["anomalies"]}
    partners = {ids[a["also_id"]]: ids[a["id"]] for a in labels["anomalies"] if "also_id" in a}
    result.anomalies_truth = len(labels["anomalies"])
    result.anomalies_flagged = len(summary["anomalies"])
    for anomaly in summary["anomalies"]:
        flagged = anomaly["transaction_id"]
        truth = planted.pop(partners.get(flagged, flagged), None)
        if truth is None:
            result.misses.append(f"flagged but not planted: {anomaly['reason']}")
            continue
        result.anomalies_found += 1
        result.anomaly_kind_right += truth["kind"] == anomaly["kind"]
    result.misses += [f"planted anomaly not flagged: {a['kind']}" for a in planted.values()]
    for position in summary["net_worth"]["positions"]:
        if position["currency"] == "USD":
            day = date.fromisoformat(position["rate_date"])
            result.rate_right = position["rate_source"] == "observed" and abs(
                Decimal(position["rate"]) - Decimal(str(usd_rate(day)))
            ) <= Decimal("0.001")
    return result
