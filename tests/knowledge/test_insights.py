"""The overview's insights, measured on a labelled family: the emulator plants recurring series
(month-end and weekend shifts, a price rise, a missed payment, weekly to yearly cadences, a USD
account), anomalies and USD card payments at known rates; the real pipeline syncs it (Dagster),
dbt builds the marts (Dagster), and detection is scored against the truth. Fixed clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from benchmarks.insights_scoring import score
from pfo_pipeline.definitions import materializable
from pfo_pipeline.knowledge.chunking import chunk_markdown, count_tokens
from pfo_pipeline.knowledge.insights import InsightsSettings, build_insights
from pfo_pipeline.knowledge.overview import OverviewRequest, build_overview
from pfo_pipeline.knowledge.periods import period_window
from pfo_pipeline.knowledge.pii_scan import scan_knowledge_for_pii
from pfo_pipeline.knowledge.store import write_overview
from powens_emulator import EmulatorConfig, start_emulator
from powens_emulator.labelled_family import usd_rate
from tests.conftest import (
    FAMILY,
    demo_credentials,
    materialize_ledger,
    open_ledger,
    resources_for,
    write_tenants_file,
)

CLOCK = datetime(2026, 4, 30, 8, 0)  # a Thursday at a month end; May 31 is a Sunday
AS_OF = CLOCK.date()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("labelled")
    config = EmulatorConfig(seed=7, transactions=2500, history_days=430, now=CLOCK,
                            family="labelled")  # fmt: skip
    with demo_credentials(), start_emulator(config) as emulator:
        tenants = write_tenants_file(tmp / "tenants.yaml", emulator.base_url)
        ledger = tmp / "ledger"
        assert materialize_ledger(tenants, ledger, FAMILY).success
        dbt_run = dg.materialize(
            materializable(),
            selection=dg.AssetSelection.groups("analytics", "insights"),
            resources=resources_for(ledger),
        )
        assert dbt_run.success
        labels = emulator.state.labels()
    conn = open_ledger(ledger)
    ids = {
        int(e): i
        for e, i in conn.execute("SELECT external_id, id FROM ledger.bank_transactions").fetchall()
    }
    overviews = {
        period: build_overview(conn, OverviewRequest(FAMILY, period, AS_OF))
        for period in ("week", "month", "quarter")
    }  # fmt: skip
    yield {"conn": conn, "labels": labels, "ids": ids, "overviews": overviews}
    conn.close()


def test_recurring_commitments_meet_the_bars_with_exact_next_dates(labelled) -> None:
    result = score(labelled["labels"], labelled["overviews"]["quarter"].summary, labelled["ids"])
    assert result.series_precision >= 0.95, result.misses
    assert result.series_recall >= 0.95, result.misses
    assert result.next_date_right == result.series_matched, result.misses
    assert result.next_amount_right == result.series_matched, result.misses
    assert result.flags_right == result.series_matched, result.misses
    commitments = {c["payee"]: c for c in labelled["overviews"]["quarter"].summary["commitments"]}
    assert commitments["ACME SAS"]["next_date"] == "2026-05-29"  # month end on a Sunday: Friday
    assert commitments["Netflix"]["previous_amount"] == "-13.49"  # the price rise
    assert commitments["Netflix"]["next_amount"] == "-15.49"
    assert commitments["Canal+"]["missed_date"] == "2026-04-06"
    assert commitments["MAIF"]["cadence"] == "yearly"
    assert commitments["MAIF"]["next_date"] == "2027-03-22"  # 20 March 2027 is a Saturday


def test_anomalies_meet_the_bars_and_say_why(labelled) -> None:
    summary = labelled["overviews"]["quarter"].summary
    result = score(labelled["labels"], summary, labelled["ids"])
    assert result.anomaly_recall >= 0.9, result.misses
    assert result.anomaly_false_share <= 0.05, result.misses
    kinds = {a["kind"] for a in summary["anomalies"]}
    assert kinds == {"amount_far_above_category", "new_payee", "duplicate_charge", "new_fee"}
    assert all(len(a["reason"]) > 20 for a in summary["anomalies"])
    # each period lists only its own anomalies
    for period, overview in labelled["overviews"].items():
        start, end = period_window(period, AS_OF)
        days = [date.fromisoformat(a["date"]) for a in overview.summary["anomalies"]]
        assert all(start <= d <= end for d in days)


def test_net_worth_converts_with_the_observed_rate_and_never_without_one(labelled) -> None:
    worth = labelled["overviews"]["month"].summary["net_worth"]
    usd = next(p for p in worth["positions"] if p["currency"] == "USD")
    rate_day = date.fromisoformat(usd["rate_date"])
    assert usd["rate_source"] == "observed" and rate_day <= AS_OF
    assert abs(Decimal(usd["rate"]) - Decimal(str(usd_rate(rate_day)))) <= Decimal("0.001")
    eur = next(p for p in worth["positions"] if p["currency"] == "EUR")
    expected = Decimal(eur["net"]) + (Decimal(usd["net"]) * Decimal(usd["rate"])).quantize(
        Decimal("0.01")
    )
    assert abs(Decimal(worth["total"]["net"]) - expected) <= Decimal("0.01")
    assert Decimal(eur["liabilities"]) < 0  # the mortgage
    assert "observed in Powens data on" in labelled["overviews"]["month"].markdown

    conn = labelled["conn"]
    configured = build_insights(
        conn, FAMILY, AS_OF, InsightsSettings(fx_rates={"USD": Decimal("0.5")})
    )
    position = next(p for p in configured.net_worth.positions if p.currency == "USD")
    assert (position.rate.source, position.rate.rate) == ("configured", Decimal("0.5"))
    sterling = build_insights(conn, FAMILY, AS_OF, InsightsSettings(reporting_currency="GBP"))
    assert sterling.net_worth.unconverted == ["EUR", "USD"]
    assert sterling.net_worth.net == 0


def test_due_next_and_projected_balances_warn_under_the_floor(labelled) -> None:
    conn = labelled["conn"]
    summary = labelled["overviews"]["month"].summary["due_next"]
    days = [date.fromisoformat(i["date"]) for i in summary["items"]]
    assert days == sorted(days) and all(AS_OF < d <= AS_OF + timedelta(days=30) for d in days)
    assert sum(1 for i in summary["items"] if i["cadence"] == "weekly") == 4  # the Mondays of May
    for projection in summary["projections"]:
        items = [i for i in summary["items"] if i["account"] == projection["account"]]
        running = [Decimal(projection["start"])]
        for item in items:
            running.append(running[-1] + Decimal(item["amount"]))
        assert Decimal(projection["lowest"]) == min(running)
        assert Decimal(projection["end"]) == running[-1]
        assert not projection["below_floor"]  # floor 0: the family can pay what is due
    lowest = min(Decimal(p["lowest"]) for p in summary["projections"])
    warned = build_overview(
        conn,
        OverviewRequest(
            FAMILY, "month", AS_OF, insights=InsightsSettings(low_balance_floor=lowest + 1)
        ),
    )
    flagged = [p for p in warned.summary["due_next"]["projections"] if p["below_floor"]]
    assert len(flagged) == 1 and "**Low balance warning:**" in warned.markdown


def test_month_over_month_changes_match_the_marts_largest_first(labelled) -> None:
    changes = labelled["overviews"]["month"].summary["category_changes"]
    assert changes
    sizes = [abs(Decimal(c["change"])) for c in changes]
    assert sizes == sorted(sizes, reverse=True)
    start, end = period_window("month", AS_OF)
    previous_start, previous_end = period_window("month", start - timedelta(days=1))
    sql = (
        "SELECT currency, category, sum(CASE WHEN category = 'income' THEN inflow ELSE outflow END) "
        "FROM analytics.fct_daily_category_flows WHERE tenant_id = ? AND day BETWEEN ? AND ? "
        "GROUP BY ALL"
    )

    def spent(a: date, b: date) -> dict:
        return {(c, k): v for c, k, v in labelled["conn"].execute(sql, [FAMILY, a, b]).fetchall()}

    now, before = spent(start, end), spent(previous_start, previous_end)
    for c in changes:
        key = (c["currency"], c["category"])
        assert Decimal(c["current"]) == now.get(key, 0)
        assert Decimal(c["previous"]) == before.get(key, 0)


def test_sections_read_well_chunk_small_hold_no_pii_and_are_reproducible(labelled) -> None:
    conn = labelled["conn"]
    overview = labelled["overviews"]["quarter"]
    for heading in ("## Due in the next 30 days", "## Projected balances", "## Unusual transactions",
                    "## Net worth (EUR)", "## Savings rate", "## Change against the previous quarter",
                    "## Recurring commitments"):  # fmt: skip
        assert heading in overview.markdown
    assert all(count_tokens(c) <= 600 for c in chunk_markdown(overview.markdown))
    for name in ("DUPONT", "LEROY", "LEA MARTIN", "BENEFICIAIRE", "BERNARD", "CLAIRE"):
        assert name.lower() not in overview.markdown.lower()
    assert "individual" in overview.markdown
    for period, built in labelled["overviews"].items():
        write_overview(conn, built, CLOCK.replace(tzinfo=UTC))
        again = build_overview(conn, OverviewRequest(FAMILY, period, AS_OF))
        assert (again.markdown, again.summary) == (built.markdown, built.summary)
    assert scan_knowledge_for_pii(conn, FAMILY) == []
