"""What is coming and what is odd: reads the PII-free marts once per tenant and day and feeds the
detection modules (recurring, anomalies, projection, net worth). The overview then filters the
result to its period and renders it (`insights_summary`, `render_insights`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from pfo_pipeline.knowledge.anomalies import (
    Anomaly,
    AnomalySettings,
    CategoryRange,
    History,
    detect_anomalies,
    window_with_lead,
)
from pfo_pipeline.knowledge.networth import (
    AccountBalance,
    NetWorth,
    months_covered,
    net_worth,
)
from pfo_pipeline.knowledge.projection import Projection, project_balances
from pfo_pipeline.knowledge.recurring import (
    Payment,
    RecurringSeries,
    RecurringSettings,
    detect_recurring,
    due_within,
)

CENT = Decimal("0.01")
LIABILITY_TYPES = frozenset({"loan", "card"})


@dataclass(frozen=True)
class InsightsSettings:
    reporting_currency: str = "EUR"
    fx_rates: dict[str, Decimal] = field(default_factory=dict)  # 1 unit = rate x reporting
    low_balance_floor: Decimal = Decimal(0)
    due_days: int = 30
    lookback_days: int = 800  # enough for three yearly payments
    anomaly_days: int = 92  # the longest overview period
    recurring: RecurringSettings = field(default_factory=RecurringSettings)
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)


@dataclass(frozen=True)
class Insights:
    as_of: date
    settings: InsightsSettings
    series: list[RecurringSeries]
    due: list[tuple[date, RecurringSeries]]
    projections: list[Projection]
    anomalies: list[Anomaly]
    net_worth: NetWorth
    monthly_outflow: dict[str, Decimal]  # per currency, average of the last three months


def insights_settings(config: dict[str, Any]) -> InsightsSettings:
    """From the overview's Dagster config (plain numbers) to exact settings."""

    def dec(key: str) -> Decimal:
        return Decimal(str(config[key]))

    return InsightsSettings(
        reporting_currency=config["reporting_currency"].upper(),
        fx_rates={k.upper(): Decimal(str(v)) for k, v in (config.get("fx_rates") or {}).items()},
        low_balance_floor=dec("low_balance_floor"),
        due_days=int(config["due_days"]),
        anomalies=AnomalySettings(
            category_multiple=float(config["category_multiple"]),
            new_payee_min_amount=dec("new_payee_min_amount"),
            duplicate_window_days=int(config["duplicate_window_days"]),
            duplicate_min_amount=dec("duplicate_min_amount"),
            new_fee_quiet_days=int(config["new_fee_quiet_days"]),
        ),
    )


@cache
def _queries() -> dict[str, str]:
    text = Path(__file__).with_name("insights.sql").read_text()
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.M)
    return {
        name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def _run(conn: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[tuple]:
    return conn.execute(_queries()[name], params).fetchall()


def _payments(rows: list[tuple]) -> list[Payment]:
    return [
        Payment(a, k, lbl, cur, cat, d, Decimal(amt), tid)
        for a, k, lbl, cur, cat, d, amt, tid in rows
    ]


def build_insights(
    conn: duckdb.DuckDBPyConnection, tenant: str, as_of: date, settings: InsightsSettings
) -> Insights:
    since = as_of - timedelta(days=settings.lookback_days)
    candidates = _payments(
        _run(conn, "recurring_candidates", tenant=tenant, since=since, as_of=as_of,
             most=settings.lookback_days // 5)
    )  # fmt: skip
    series = detect_recurring(candidates, as_of, settings.recurring)
    due = due_within(series, as_of, settings.due_days)
    balances = [
        AccountBalance(alias, kind, currency, Decimal(balance), day)
        for alias, kind, currency, balance, day in _run(conn, "latest_balances", tenant=tenant, as_of=as_of)
    ]  # fmt: skip
    projections = project_balances(
        {b.account: (b.currency, b.balance, b.day) for b in balances
         if b.account_type not in LIABILITY_TYPES},
        due,
        settings.low_balance_floor,
    )  # fmt: skip
    observed = [
        (day, source, target, Decimal(rate))
        for day, source, target, rate in _run(conn, "observed_rates", tenant=tenant, as_of=as_of)
    ]
    worth = net_worth(balances, settings.reporting_currency, settings.fx_rates, observed, as_of)
    start = as_of - timedelta(days=settings.anomaly_days - 1)
    anomalies = detect_anomalies(
        _payments(_run(conn, "window_debits", tenant=tenant, as_of=as_of,
                       lead=window_with_lead(start, settings.anomalies))),
        _history(conn, tenant, start, as_of, settings.anomalies),
        start,
        as_of,
        settings.anomalies,
    )  # fmt: skip
    outflow = {
        currency: (Decimal(total) / 3).quantize(CENT)
        for currency, total in _run(conn, "recent_outflow", tenant=tenant, as_of=as_of)
    }
    return Insights(as_of, settings, series, due, projections, anomalies, worth, outflow)


def _history(
    conn: duckdb.DuckDBPyConnection, tenant: str, start: date, as_of: date, s: AnomalySettings
) -> History:
    lead = window_with_lead(start, s)
    ranges = {
        (currency, category): CategoryRange(Decimal(p50), Decimal(p95), n)
        for currency, category, p50, p95, n in _run(conn, "category_ranges", tenant=tenant, start=start)
    }  # fmt: skip
    first_seen, last_before = {}, {}
    for key, first, last in _run(conn, "payee_history", tenant=tenant, lead=lead, as_of=as_of):
        first_seen[key] = first
        if last is not None:
            last_before[key] = last
    first_day = _run(conn, "first_day", tenant=tenant)[0][0]
    return History(first_day, ranges, first_seen, last_before)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(Decimal(value).quantize(CENT))


def insights_summary(insights: Insights, start: date, end: date) -> dict[str, Any]:
    """The JSON part for one overview period (anomalies of the period; the rest as of its end)."""
    worth = insights.net_worth
    reporting = worth.reporting_currency
    liquid_months = None
    converted_outflow = [worth.convert(c, v) for c, v in insights.monthly_outflow.items()]
    if insights.monthly_outflow and None not in converted_outflow:
        liquid_months = months_covered(worth.liquid, sum(converted_outflow, Decimal(0)))
    return {
        "as_of": insights.as_of.isoformat(),
        "commitments": [
            {
                "payee": s.payee_label,
                "payee_key": s.payee_key,
                "account": s.account,
                "currency": s.currency,
                "category": s.category,
                "cadence": s.cadence,
                "occurrences": s.occurrences,
                "typical_amount": _money(s.typical_amount),
                "last_date": s.last_date.isoformat(),
                "next_date": s.next_date.isoformat(),
                "next_amount": _money(s.next_amount),
                "missed_date": s.missed_date.isoformat() if s.missed_date else None,
                "previous_amount": _money(s.previous_amount),
                "changed_since": s.changed_since.isoformat() if s.changed_since else None,
            }
            for s in insights.series
        ],
        "due_next": {
            "days": insights.settings.due_days,
            "items": [
                {
                    "date": d.isoformat(),
                    "payee": s.payee_label,
                    "account": s.account,
                    "currency": s.currency,
                    "amount": _money(s.next_amount),
                    "cadence": s.cadence,
                }
                for d, s in insights.due
            ],
            "projections": [
                {
                    "account": p.account,
                    "currency": p.currency,
                    "start": _money(p.start_balance),
                    "start_day": p.start_day.isoformat(),
                    "lowest": _money(p.lowest_balance),
                    "lowest_day": p.lowest_day.isoformat(),
                    "end": _money(p.end_balance),
                    "commitments": p.commitments,
                    "floor": _money(p.floor),
                    "below_floor": p.below_floor,
                }
                for p in insights.projections
            ],
        },
        "anomalies": [
            {
                "kind": a.kind,
                "date": a.day.isoformat(),
                "account": a.account,
                "payee": a.payee_label,
                "category": a.category,
                "currency": a.currency,
                "amount": _money(a.amount),
                "reason": a.reason,
                "transaction_id": a.transaction_id,
            }
            for a in insights.anomalies
            if start <= a.day <= end
        ],
        "net_worth": {
            "as_of": worth.as_of.isoformat(),
            "reporting_currency": reporting,
            "positions": [
                {
                    "currency": p.currency,
                    "assets": _money(p.assets),
                    "liabilities": _money(p.liabilities),
                    "net": _money(p.net),
                    "liquid": _money(p.liquid),
                    "rate": str(p.rate.rate) if p.rate else None,
                    "rate_source": p.rate.source if p.rate else None,
                    "rate_date": p.rate.day.isoformat() if p.rate and p.rate.day else None,
                    "net_in_reporting": _money(p.net * p.rate.rate) if p.rate else None,
                }
                for p in worth.positions
            ],
            "total": {
                "assets": _money(worth.assets),
                "liabilities": _money(worth.liabilities),
                "net": _money(worth.net),
                "liquid": _money(worth.liquid),
            },
            "unconverted_currencies": worth.unconverted,
            "average_monthly_outflow": {c: _money(v) for c, v in insights.monthly_outflow.items()},
            "months_of_outflow_covered": str(liquid_months) if liquid_months is not None else None,
        },
    }
