"""A small PNG of the balance trend per account alias and the daily net cashflow (no PII)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pfo_pipeline.knowledge.overview import Overview


def render_trend_chart(overview: Overview, path: Path) -> Path:
    summary = overview.summary
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4.5), sharex=False)
    for balance in summary["balances"]:
        days = [date.fromisoformat(balance["first_day"]), date.fromisoformat(balance["last_day"])]
        values = [float(balance["start"]), float(balance["end"])]
        top.plot(days, values, marker="o", label=f"{balance['account']} ({balance['currency']})")
    top.set_title(f"Balances, {summary['period_start']} to {summary['period_end']}", fontsize=9)
    if summary["balances"]:
        top.legend(fontsize=6, ncol=2)
    for currency in sorted({t["currency"] for t in summary.get("cashflow_trend", [])}):
        rows = [t for t in summary["cashflow_trend"] if t["currency"] == currency]
        bottom.bar(
            [date.fromisoformat(t["bucket_start"]) for t in rows],
            [float(t["net"]) for t in rows],
            label=currency,
            alpha=0.7,
        )
    bottom.set_title("Net cashflow", fontsize=9)
    bottom.axhline(0, color="grey", linewidth=0.5)
    if summary.get("cashflow_trend"):
        bottom.legend(fontsize=6)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
