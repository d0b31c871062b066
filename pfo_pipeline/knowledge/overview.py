"""The financial-overview document (docs/spec.md §8), built only from the analytics marts.

The marts carry no PII, so nothing here can leak an IBAN, account number, counterparty or wording:
accounts appear by alias ("checking 1"), categories by taxonomy name, money per currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from pfo_pipeline.knowledge import insights_markdown as md
from pfo_pipeline.knowledge.comparison import category_changes
from pfo_pipeline.knowledge.insights import (
    Insights,
    InsightsSettings,
    build_insights,
    insights_summary,
)
from pfo_pipeline.knowledge.networth import savings_rate
from pfo_pipeline.knowledge.periods import Period, period_window

CENT = Decimal("0.01")


@dataclass(frozen=True)
class OverviewRequest:
    tenant_id: str
    period: Period
    as_of: date
    account_ids: tuple[str, ...] | None = None
    include_categories: bool = True
    include_cashflow_trend: bool = True
    include_insights: bool = True
    insights: InsightsSettings = field(default_factory=InsightsSettings)


@dataclass(frozen=True)
class Overview:
    request: OverviewRequest
    period_start: date
    period_end: date
    summary: dict[str, Any] = field(repr=False)
    markdown: str = field(repr=False)


def _money(value: Any) -> str:
    return str(Decimal(value or 0).quantize(CENT))


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _cashflow(conn, tenant: str, start: date, end: date) -> list[dict[str, Any]]:
    return _rows(
        conn,
        "SELECT currency, sum(inflow) AS inflow, sum(outflow) AS outflow, sum(net) AS net, "
        "sum(transaction_count) AS transactions, sum(pending_inflow) - sum(pending_outflow) AS pending_net, "
        "sum(pending_count) AS pending_count "
        "FROM analytics.fct_daily_cashflow WHERE tenant_id = ? AND day BETWEEN ? AND ? "
        "GROUP BY currency ORDER BY currency",
        [tenant, start, end],
    )


def _trend(conn, tenant: str, period: Period, start: date, end: date) -> list[dict[str, Any]]:
    """Daily for a week, weekly buckets (starting at the period start) for a month or quarter."""
    bucket = (
        "day"
        if period == "week"
        else "(?::DATE + to_days(CAST(7 * (date_diff('day', ?::DATE, day) // 7) AS INTEGER)))::DATE"
    )
    params: list[Any] = [tenant, start, end]
    if period != "week":
        params = [start, start, *params]
    return _rows(
        conn,
        f"SELECT {bucket} AS bucket, currency, sum(inflow) AS inflow, sum(outflow) AS outflow, "
        "sum(net) AS net FROM analytics.fct_daily_cashflow "
        "WHERE tenant_id = ? AND day BETWEEN ? AND ? GROUP BY ALL ORDER BY bucket, currency",
        params,
    )


def _categories(conn, tenant: str, start: date, end: date) -> list[dict[str, Any]]:
    return _rows(
        conn,
        "SELECT currency, category, sum(outflow) AS outflow, sum(inflow) AS inflow, "
        "sum(transaction_count) AS transactions FROM analytics.fct_daily_category_flows "
        "WHERE tenant_id = ? AND day BETWEEN ? AND ? GROUP BY ALL "
        "ORDER BY currency, outflow DESC, category",
        [tenant, start, end],
    )


def _balances(
    conn, tenant: str, start: date, end: date, account_ids: tuple[str, ...] | None
) -> list[dict[str, Any]]:
    where = "b.tenant_id = ? AND b.day BETWEEN ? AND ?"
    params: list[Any] = [tenant, start, end]
    if account_ids:
        where += " AND list_contains(?, b.account_id)"
        params.append(list(account_ids))
    return _rows(
        conn,
        "SELECT a.account_alias AS account, a.account_type AS type, b.currency, "
        "arg_min(b.balance, b.day) AS start_balance, arg_max(b.balance, b.day) AS end_balance, "
        "min(b.balance) AS min_balance, max(b.balance) AS max_balance, "
        "min(b.day) AS first_day, max(b.day) AS last_day, "
        "count(*) FILTER (WHERE b.is_snapshot) AS snapshot_days, count(*) AS days "
        "FROM analytics.fct_daily_balances b JOIN analytics.dim_accounts a USING (account_id) "
        f"WHERE {where} GROUP BY ALL ORDER BY account",
        params,
    )


def build_overview(
    conn: duckdb.DuckDBPyConnection, request: OverviewRequest, insights: Insights | None = None
) -> Overview:
    """`insights` (what is coming and what is odd, as of the day) may be shared by the periods
    of one day; it is built here when not given."""
    start, end = period_window(request.period, request.as_of)
    tenant = request.tenant_id
    cashflow = _cashflow(conn, tenant, start, end)
    summary: dict[str, Any] = {
        "tenant_id": tenant,
        "period": request.period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "cashflow": [
            {
                "currency": row["currency"],
                "inflow": _money(row["inflow"]),
                "outflow": _money(row["outflow"]),
                "net": _money(row["net"]),
                "transactions": int(row["transactions"]),
                "pending_net": _money(row["pending_net"]),
                "pending_transactions": int(row["pending_count"]),
            }
            for row in cashflow
        ],
    }
    if request.include_cashflow_trend:
        summary["cashflow_trend"] = [
            {
                "bucket_start": row["bucket"].isoformat(),
                "currency": row["currency"],
                "inflow": _money(row["inflow"]),
                "outflow": _money(row["outflow"]),
                "net": _money(row["net"]),
            }
            for row in _trend(conn, tenant, request.period, start, end)
        ]
    if request.include_categories:
        outflow_by_currency = {row["currency"]: Decimal(row["outflow"] or 0) for row in cashflow}
        summary["categories"] = [
            {
                "currency": row["currency"],
                "category": row["category"],
                "outflow": _money(row["outflow"]),
                "inflow": _money(row["inflow"]),
                "transactions": int(row["transactions"]),
                "share_of_outflow_pct": (
                    str(
                        (
                            Decimal(row["outflow"]) * 100 / outflow_by_currency[row["currency"]]
                        ).quantize(Decimal("0.1"))
                    )
                    if outflow_by_currency.get(row["currency"])
                    else "0.0"
                ),
            }
            for row in _categories(conn, tenant, start, end)
            if Decimal(row["outflow"] or 0) > 0
        ]
    summary["balances"] = [
        {
            "account": row["account"],
            "type": row["type"],
            "currency": row["currency"],
            "start": _money(row["start_balance"]),
            "end": _money(row["end_balance"]),
            "min": _money(row["min_balance"]),
            "max": _money(row["max_balance"]),
            "first_day": row["first_day"].isoformat(),
            "last_day": row["last_day"].isoformat(),
            "snapshot_days": int(row["snapshot_days"]),
            "reconstructed_days": int(row["days"] - row["snapshot_days"]),
        }
        for row in _balances(conn, tenant, start, end, request.account_ids)
    ]
    if request.account_ids:
        summary["account_filter_applies_to"] = "balances"
    if request.include_insights:
        if insights is None:
            insights = build_insights(conn, tenant, request.as_of, request.insights)
        summary.update(insights_summary(insights, start, end))
        summary["savings_rate"] = [
            {
                "currency": c["currency"],
                "inflow": c["inflow"],
                "net": c["net"],
                "savings_rate_pct": _str(savings_rate(Decimal(c["inflow"]), Decimal(c["outflow"]))),
            }
            for c in summary["cashflow"]
        ]
        summary["category_changes"] = _changes(conn, tenant, request.period, start, end)
    return Overview(request, start, end, summary, render_markdown(summary))


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _changes(conn, tenant: str, period: Period, start: date, end: date) -> list[dict[str, Any]]:
    previous_start, previous_end = period_window(period, start - timedelta(days=1))

    def flows(a: date, b: date) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
        return {
            (r["currency"], r["category"]): (Decimal(r["inflow"]), Decimal(r["outflow"]))
            for r in _categories(conn, tenant, a, b)
        }

    return [
        {
            "currency": c.currency,
            "category": c.category,
            "previous": _money(c.previous),
            "current": _money(c.current),
            "change": _money(c.change),
            "change_pct": _str(c.change_pct),
            "previous_period_start": previous_start.isoformat(),
            "previous_period_end": previous_end.isoformat(),
        }
        for c in category_changes(flows(start, end), flows(previous_start, previous_end))
    ]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(summary: dict[str, Any]) -> str:
    """Markdown for people and LLMs; every figure comes from `summary` (the JSON)."""
    period = summary["period"]
    lines = [
        f"# Financial overview — {period}, {summary['period_start']} to {summary['period_end']}",
        "",
        f"Tenant `{summary['tenant_id']}`. Derived figures only; currencies are never added together. "
        "Internal transfers between own accounts and cancelled operations are excluded.",
        "",
        "## Cashflow",
        "",
    ]
    if summary["cashflow"]:
        lines += _table(
            ["Currency", "Inflow", "Outflow", "Net", "Transactions", "Of which pending (net)"],
            [
                [
                    c["currency"],
                    c["inflow"],
                    c["outflow"],
                    c["net"],
                    str(c["transactions"]),
                    c["pending_net"],
                ]
                for c in summary["cashflow"]
            ],
        )
    else:
        lines.append("No activity in this period.")
    if "commitments" in summary:
        for section in (
            md.render_due_next(summary),
            md.render_anomalies(summary),
            md.render_net_worth(summary),
            md.render_savings(summary),
            md.render_changes(summary, period),
        ):
            lines += ["", *section]
    if "cashflow_trend" in summary:
        lines += ["", "## Cashflow trend", ""]
        label = "Day" if period == "week" else "Week starting"
        if summary["cashflow_trend"]:
            lines += _table(
                [label, "Currency", "Inflow", "Outflow", "Net"],
                [
                    [t["bucket_start"], t["currency"], t["inflow"], t["outflow"], t["net"]]
                    for t in summary["cashflow_trend"]
                ],
            )
        else:
            lines.append("No activity in this period.")
    if "categories" in summary:
        lines += ["", "## Spending by category", ""]
        if summary["categories"]:
            lines += _table(
                ["Currency", "Category", "Outflow", "Share of outflow", "Transactions"],
                [
                    [
                        c["currency"],
                        c["category"].replace("_", " "),
                        c["outflow"],
                        c["share_of_outflow_pct"] + " %",
                        str(c["transactions"]),
                    ]
                    for c in summary["categories"]
                ],
            )
        else:
            lines.append("No spending in this period.")
    lines += ["", "## Balances", ""]
    if summary["balances"]:
        lines += _table(
            ["Account", "Currency", "Start", "End", "Min", "Max", "Snapshot days"],
            [
                [b["account"], b["currency"], b["start"], b["end"], b["min"], b["max"],
                 f"{b['snapshot_days']} of {b['snapshot_days'] + b['reconstructed_days']}"]
                for b in summary["balances"]
            ],
        )  # fmt: skip
        lines += [
            "",
            "Days without a snapshot are reconstructed backwards from the next snapshot and the "
            "booked transactions in between.",
        ]
    else:
        lines.append("No balance history in this period.")
    if "commitments" in summary:
        lines += ["", *md.render_commitments(summary)]
    return "\n".join(lines) + "\n"
