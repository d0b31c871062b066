"""Markdown for the insight sections of the overview: short sections and tables that read well
in the Dagster UI and split into chunks on section and row boundaries. Every figure comes from
the JSON summary."""

from __future__ import annotations

from typing import Any


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _flags(c: dict[str, Any]) -> str:
    flags = []
    if c["missed_date"]:
        flags.append(f"missed on {c['missed_date']}")
    if c["previous_amount"] is not None:
        flags.append(f"amount changed from {c['previous_amount']} on {c['changed_since']}")
    return "; ".join(flags) or "-"


def render_commitments(summary: dict[str, Any]) -> list[str]:
    lines = ["## Recurring commitments", ""]
    commitments = summary["commitments"]
    if not commitments:
        return [*lines, "No recurring commitment found in the booked history."]
    lines += [
        "Series of payments to or from one payee at a steady cadence and amount. Private persons "
        'appear only as "individual".',
        "",
    ]
    return lines + table(
        ["Payee", "Account", "Cadence", "Typical", "Last", "Next expected", "Next amount", "Flags"],
        [
            [c["payee"], c["account"], c["cadence"], f"{c['typical_amount']} {c['currency']}",
             c["last_date"], c["next_date"], c["next_amount"], _flags(c)]
            for c in commitments
        ],
    )  # fmt: skip


def render_due_next(summary: dict[str, Any]) -> list[str]:
    due = summary["due_next"]
    lines = [f"## Due in the next {due['days']} days", ""]
    if due["items"]:
        lines += table(
            ["Date", "Payee", "Account", "Amount"],
            [[i["date"], i["payee"], i["account"], f"{i['amount']} {i['currency']}"]
             for i in due["items"]],
        )  # fmt: skip
    else:
        lines.append("No commitment is expected.")
    if due["projections"]:
        lines += ["", "## Projected balances", ""]
        lines += [
            "Latest balance plus the commitments above; day-to-day spending is not projected.",
            "",
        ]
        lines += table(
            ["Account", "Now", "Lowest", "On", "After 30 days", "Warning"],
            [[p["account"], f"{p['start']} {p['currency']}", p["lowest"], p["lowest_day"], p["end"],
              f"LOW: under {p['floor']}" if p["below_floor"] else "-"]
             for p in due["projections"]],
        )  # fmt: skip
        warnings = [p for p in due["projections"] if p["below_floor"]]
        for p in warnings:
            lines += ["", f"**Low balance warning:** {p['account']} is projected at {p['lowest']} "
                          f"{p['currency']} on {p['lowest_day']}, under the floor of {p['floor']}."]  # fmt: skip
    return lines


def render_anomalies(summary: dict[str, Any]) -> list[str]:
    lines = ["## Unusual transactions", ""]
    if not summary["anomalies"]:
        return [*lines, "Nothing unusual in this period."]
    return lines + table(
        ["Date", "Account", "Payee", "Amount", "Why"],
        [[a["date"], a["account"], a["payee"], f"{a['amount']} {a['currency']}", a["reason"]]
         for a in summary["anomalies"]],
    )  # fmt: skip


def render_net_worth(summary: dict[str, Any]) -> list[str]:
    worth = summary["net_worth"]
    reporting = worth["reporting_currency"]
    lines = [f"## Net worth ({reporting})", ""]
    if not worth["positions"]:
        return [*lines, "No balance known."]
    lines += table(
        ["Currency", "Assets", "Liabilities", "Net", f"Net in {reporting}", "Rate used"],
        [[p["currency"], p["assets"], p["liabilities"], p["net"], p["net_in_reporting"] or "-",
          _rate(p, reporting)] for p in worth["positions"]],
    )  # fmt: skip
    total = worth["total"]
    lines += ["", f"Total as of {worth['as_of']}: assets {total['assets']} {reporting}, liabilities "
                  f"{total['liabilities']} {reporting}, net {total['net']} {reporting}."]  # fmt: skip
    if worth["unconverted_currencies"]:
        lines.append(
            "Not included (no exchange rate observed or configured): "
            + ", ".join(worth["unconverted_currencies"])
            + "."
        )
    if worth["months_of_outflow_covered"] is not None:
        lines.append(
            f"Liquid balances ({total['liquid']} {reporting}) cover "
            f"{worth['months_of_outflow_covered']} months of the last three months' average outflow."
        )
    return lines


def _rate(position: dict[str, Any], reporting: str) -> str:
    if position["rate_source"] is None:
        return "no rate: not converted"
    if position["rate_source"] == "identity":
        return "-"
    where = "configured" if position["rate_source"] == "configured" else (
        f"observed in Powens data on {position['rate_date']}")  # fmt: skip
    return f"1 {position['currency']} = {position['rate']} {reporting} ({where})"


def render_savings(summary: dict[str, Any]) -> list[str]:
    rows = summary.get("savings_rate", [])
    if not rows:
        return []
    lines = ["## Savings rate", ""]
    return lines + table(
        ["Currency", "Inflow", "Net", "Savings rate"],
        [[r["currency"], r["inflow"], r["net"],
          f"{r['savings_rate_pct']} %" if r["savings_rate_pct"] is not None else "-"]
         for r in rows],
    )  # fmt: skip


def render_changes(summary: dict[str, Any], period: str) -> list[str]:
    lines = [f"## Change against the previous {period}", ""]
    changes = summary["category_changes"]
    if not changes:
        return [*lines, "No change by category."]
    lines += ["Money out per category (money in for income), largest change first.", ""]
    return lines + table(
        ["Currency", "Category", "Previous", "This period", "Change"],
        [[c["currency"], c["category"].replace("_", " "), c["previous"], c["current"],
          c["change"] + (f" ({c['change_pct']} %)" if c["change_pct"] is not None else "")]
         for c in changes],
    )  # fmt: skip
