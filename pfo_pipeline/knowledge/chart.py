"""The overview's trend chart: daily balances and net cashflow, PII-free, as PNG bytes.

Why panels: one axis for every account let a -180,000 loan flatten every other line, and bars of
two currencies on one day hid each other. So balances get one panel per account class and
currency (each on its own scale), cashflow one panel per currency, every x axis spans exactly the
overview's period, and legends sit beside the plots where they cannot cover data. Only account
aliases (e.g. "checking 1") and aggregates reach the image.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb

from pfo_pipeline.knowledge.overview import Overview

ACCOUNT_CLASSES: dict[str, str] = {
    # Powens' account type enum (docs/powens-api.md), grouped by what a family compares.
    **dict.fromkeys(("checking", "joint"), "Cash"),
    **dict.fromkeys(("savings", "deposit", "ldds", "livret_a", "csl"), "Savings"),
    **dict.fromkeys(
        ("market", "pea", "lifeinsurance", "capitalisation", "crowdlending", "article83",
         "madelin", "pee", "per", "perco", "perp", "rsp"),
        "Investments",
    ),
    "card": "Cards",
    "loan": "Loans",
    "real_estate": "Real estate",
}  # fmt: skip
PANEL_HEIGHT_INCHES = 1.9


def account_class(account_type: str | None) -> str:
    """The chart panel an account belongs to; types Powens may add later go to "Other"."""
    return ACCOUNT_CLASSES.get((account_type or "").lower(), "Other")


def daily_balances(
    conn: duckdb.DuckDBPyConnection, overview: Overview
) -> dict[tuple[str, str], dict[str, list[tuple[date, float]]]]:
    """Per (class, currency) panel, each account alias's daily balance series in the period."""
    request = overview.request
    where = "b.tenant_id = ? AND b.day BETWEEN ? AND ?"
    params: list[Any] = [request.tenant_id, overview.period_start, overview.period_end]
    if request.account_ids:
        where += " AND list_contains(?, b.account_id)"
        params.append(list(request.account_ids))
    rows = conn.execute(
        "SELECT a.account_alias, a.account_type, b.currency, b.day, b.balance "
        "FROM analytics.fct_daily_balances b JOIN analytics.dim_accounts a USING (account_id) "
        f"WHERE {where} ORDER BY a.account_alias, b.day",
        params,
    ).fetchall()
    panels: dict[tuple[str, str], dict[str, list[tuple[date, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for alias, account_type, currency, day, balance in rows:
        panels[(account_class(account_type), currency)][alias].append((day, float(balance)))
    return panels


def _matplotlib() -> tuple[Any, Any]:
    """pyplot and its date helpers, imported when a chart is drawn: matplotlib takes ~0.7 s to
    import, and every Dagster run and step process loads this module, drawing or not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    return plt, mdates


def _dated_axis(axis: Any, start: date, end: date) -> None:
    _, mdates = _matplotlib()
    axis.set_xlim(start - timedelta(hours=12), end + timedelta(hours=12))
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.25)


@dataclass(frozen=True)
class Panel:
    """One axis of the chart: a balance panel (lines per alias) or a cashflow panel (bars)."""

    title: str
    kind: str  # "balances" | "cashflow"
    series: dict[str, list[tuple[date, float]]]


def plan_panels(conn: duckdb.DuckDBPyConnection, overview: Overview) -> list[Panel]:
    """Balance panels per (class, currency), then one net-cashflow panel per currency."""
    panels = [
        Panel(f"{klass} balances ({currency})", "balances", dict(sorted(series.items())))
        for (klass, currency), series in sorted(daily_balances(conn, overview).items())
    ]
    flows: dict[str, list[tuple[date, float]]] = defaultdict(list)
    for bucket in overview.summary.get("cashflow_trend", []):
        flows[bucket["currency"]].append(
            (date.fromisoformat(bucket["bucket_start"]), float(bucket["net"]))
        )
    panels += [
        Panel(f"Net cashflow ({currency})", "cashflow", {"net": points})
        for currency, points in sorted(flows.items())
    ]
    return panels


def render_trend_chart(conn: duckdb.DuckDBPyConnection, overview: Overview) -> bytes:
    """The PNG of the period's panels, every x axis spanning exactly the overview's period."""
    panels = plan_panels(conn, overview)
    plt, _ = _matplotlib()
    fig, axes = plt.subplots(
        max(1, len(panels)),
        1,
        figsize=(8, 0.6 + PANEL_HEIGHT_INCHES * max(1, len(panels))),
        squeeze=False,
    )
    summary = overview.summary
    fig.suptitle(
        f"{overview.request.period.capitalize()} {summary['period_start']} to "
        f"{summary['period_end']}",
        fontsize=9,
    )
    for axis, panel in zip(axes[:, 0], panels, strict=False):
        if panel.kind == "balances":
            for alias, points in panel.series.items():
                axis.plot(
                    [d for d, _ in points], [v for _, v in points], linewidth=1.2, label=alias
                )
            axis.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        else:
            points = panel.series["net"]
            bucket_days = 1 if overview.request.period == "week" else 7  # as the trend buckets
            axis.bar(
                [d for d, _ in points],
                [v for _, v in points],
                color=["tab:green" if v >= 0 else "tab:red" for _, v in points],
                width=0.8 * bucket_days,
                align="edge",
            )
        axis.set_title(panel.title, fontsize=8, loc="left")
        axis.axhline(0, color="grey", linewidth=0.5)
        _dated_axis(axis, overview.period_start, overview.period_end)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "No balances or cashflow in this period", ha="center")
        axes[0, 0].set_axis_off()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def chart_markdown(png: bytes, title: str = "Balance and cashflow trend") -> str:
    """Markdown that shows the PNG inline (the Dagster UI renders data URIs, not local paths)."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
