"""Rules, internal transfers from both legs, overrides that survive syncs, and the `other` share."""

from __future__ import annotations

import itertools
import shutil
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pfo_pipeline.categoriser import categorise_frame, load_rules
from pfo_pipeline.categoriser.rules import RulesError
from pfo_pipeline.knowledge.periods import period_window
from pfo_pipeline.ledger.overrides import apply_category_overrides, set_category_override
from pfo_pipeline.ledger.transfers import mark_internal_transfers
from tests.conftest import FAMILY, materialize_ledger, open_ledger, query, synced_family


def frame(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["amount", "transaction_type", "description", "counterparty_name"]
    ).assign(amount=lambda f: f["amount"].map(Decimal))


def test_rules_first_match_wins_case_and_accents_ignored() -> None:
    categories = categorise_frame(
        frame(
            ("-45.10", "card", "Carrefour City", None),
            ("2500", "transfer", "VIR SEPA Salaire ACME", "ACME SAS"),
            ("-12.50", "order", "prlv sepa électricité EDF", None),
            ("-1250", "loan_repayment", "ECHEANCE PRET", None),
            ("-30", "summary_card", "RELEVE CARTE", None),
            ("-2.50", "fee", "whatever", None),
            ("-80", "withdrawal", "RETRAIT DAB", None),
            ("-9.99", "card", "UNKNOWN SHOP", None),
            ("15", "bank", "INTERETS CREDITEURS", None),
        )
    )
    assert list(categories) == [
        "groceries", "income", "utilities", "housing", "internal_transfer", "fees", "other",
        "other", "savings_and_investments",
    ]  # fmt: skip


def test_a_bad_rules_file_names_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - {category: groceries, keywords: [LIDL]}\n  - {category: food}\n")
    with pytest.raises(RulesError, match=r"rules\[1\]\.category"):
        load_rules(bad)


def test_categorising_a_million_rows_is_fast() -> None:
    rng = np.random.default_rng(1)
    words = np.array(["CB CARREFOUR", "CB SNCF", "PRLV EDF", "CB FNAC", "VIR SALAIRE"])
    big = pd.DataFrame(
        {
            "amount": pd.Series(rng.integers(-10000, 10000, 1_000_000) / 100).map(
                lambda v: Decimal(str(v))
            ),
            "transaction_type": "card",
            "description": words[rng.integers(0, len(words), 1_000_000)],
            "counterparty_name": None,
        }
    )
    started = time.perf_counter()
    categories = categorise_frame(big)
    print(f"categorised 1,000,000 rows in {time.perf_counter() - started:.2f}s")
    assert categories.isin(
        ["groceries", "transport", "utilities", "leisure", "income", "other"]
    ).all()


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("categories")
    with synced_family(tmp, seed=13, transactions=3000) as (emulator, tenants, ledger):
        yield {"ledger": ledger, "tenants": tenants, "emulator": emulator}


def test_less_than_ten_percent_of_emulator_transactions_are_other(synced) -> None:
    total, other = query(
        synced["ledger"],
        "SELECT count(*), count(*) FILTER (WHERE standardized_category = 'other') FROM ledger.bank_transactions",
    )[0]
    print(f"'other' share: {other / total:.1%} of {total} transactions")
    assert other / total < 0.10


def test_internal_transfers_are_recognised_from_both_legs(synced) -> None:
    pairs = query(
        synced["ledger"],
        "SELECT transfer_pair_id, count(*), sum(amount), count(DISTINCT account_id) "
        "FROM ledger.bank_transactions WHERE transfer_pair_id IS NOT NULL GROUP BY 1",
    )
    assert len(pairs) > 20
    assert all(n == 2 and total == 0 and accounts == 2 for _, n, total, accounts in pairs)
    loan_legs = query(
        synced["ledger"],
        "SELECT count(*) FROM ledger.bank_transactions t JOIN ledger.bank_accounts a ON a.id = t.account_id "
        "WHERE a.account_type = 'loan' AND t.standardized_category = 'internal_transfer'",
    )[0][0]
    assert loan_legs == 0  # a mortgage instalment stays housing on the paying account
    conn = open_ledger(synced["ledger"])
    try:
        assert mark_internal_transfers(conn, FAMILY) == 0  # idempotent
    finally:
        conn.close()


def test_transfers_paired_chunk_by_chunk_are_the_pairs_of_the_whole_history(
    tmp_path, synced, monkeypatch
) -> None:
    """Pairs are found over chunks of days (memory follows the chunk, not the history). Five
    pairs get their credit leg moved two days later, and the history is cut into chunks exactly
    between the two legs of each: chunked, the marks equal those of the whole history at once."""
    import pfo_pipeline.ledger.transfers as transfers

    ledger = tmp_path / "ledger"
    shutil.copytree(synced["ledger"], ledger)
    marks = "SELECT id, transfer_pair_id FROM ledger.bank_transactions WHERE transfer_pair_id IS NOT NULL"
    unmark = "UPDATE ledger.bank_transactions SET transfer_pair_id = NULL WHERE transfer_pair_id IS NOT NULL"
    conn = open_ledger(ledger, relocated=True)
    try:
        credits = conn.execute(
            "SELECT id, date + INTERVAL 2 DAY FROM ledger.bank_transactions "
            "WHERE transfer_pair_id IS NOT NULL AND amount > 0 ORDER BY date, id"
        ).fetchall()
        moved = credits[:: max(1, len(credits) // 5)][:5]  # spread over the history
        assert len(moved) == 5
        for tx_id, later in moved:
            conn.execute(
                "UPDATE ledger.bank_transactions SET date = ? WHERE id = ?", [later, tx_id]
            )
        conn.execute(unmark)
        transfers.mark_internal_transfers(conn, FAMILY)  # the whole history as one chunk
        whole = set(conn.execute(marks).fetchall())
        assert {tx_id for tx_id, _ in moved} <= {tx_id for tx_id, _ in whole}

        edges = sorted({later.date() for _, later in moved})

        def chunks_cut_between_the_legs(days, limit, margin):
            bounds = [days[0][0], *edges, days[-1][0] + timedelta(days=1)]
            yield from itertools.pairwise(bounds)

        monkeypatch.setattr(transfers, "day_chunks", chunks_cut_between_the_legs)
        conn.execute(unmark)
        assert transfers.mark_internal_transfers(conn, FAMILY) == len(whole)
        assert set(conn.execute(marks).fetchall()) == whole
    finally:
        conn.close()


def test_day_chunks_bound_the_legs_of_each_chunk() -> None:
    from datetime import timedelta

    from pfo_pipeline.ledger.transfers import day_chunks

    d = date(2026, 1, 1)
    days = [
        (d, 3),
        (d + timedelta(days=1), 3),
        (d + timedelta(days=5), 9),
        (d + timedelta(days=6), 1),
    ]
    assert list(day_chunks(days, 6)) == [
        (d, d + timedelta(days=2)),
        (d + timedelta(days=5), d + timedelta(days=6)),  # one day over the limit stands alone
        (d + timedelta(days=6), d + timedelta(days=7)),
    ]
    assert list(day_chunks([], 6)) == []
    # With a margin, the legs of the days read either side count too: however dense the
    # history, a chunk reads at most the limit (unless a day and its margins alone hold more).
    one = timedelta(days=1)
    dense = [(d, 3), (d + one, 3), (d + 2 * one, 3)]
    assert list(day_chunks(dense, 7)) == [(d, d + 2 * one), (d + 2 * one, d + 3 * one)]
    assert list(day_chunks(dense, 7, one)) == [
        (d, d + one),  # reads d-1..d+1: 6 legs (with d+1 in it, d+2 too: 9)
        (d + one, d + 2 * one),  # reads d..d+2: 9 legs, one day alone over the limit
        (d + 2 * one, d + 3 * one),
    ]


def test_a_user_override_survives_later_syncs(synced) -> None:
    ledger = synced["ledger"]
    tx_id, _category = query(
        ledger,
        "SELECT id, standardized_category FROM ledger.bank_transactions "
        "WHERE standardized_category = 'groceries' AND status = 'booked' LIMIT 1",
    )[0]
    conn = open_ledger(ledger)
    try:
        set_category_override(conn, FAMILY, tx_id, "leisure")
        with pytest.raises(ValueError, match="taxonomy"):
            set_category_override(conn, FAMILY, tx_id, "food")
        assert apply_category_overrides(conn, FAMILY) == 0
    finally:
        conn.close()
    synced["emulator"].advance(2)
    assert materialize_ledger(synced["tenants"], ledger, FAMILY, run_config={
        "ops": {"bank_transactions": {"config": {"full_refresh": True}}}
    }).success  # fmt: skip
    assert query(
        ledger,
        "SELECT standardized_category, category_source FROM ledger.bank_transactions WHERE id = ?",
        [tx_id],
    )[0] == ("leisure", "user")


@pytest.mark.parametrize(
    "period, as_of, start",
    [
        ("week", date(2024, 3, 3), date(2024, 2, 26)),
        ("week", date(2026, 1, 2), date(2025, 12, 27)),
        ("month", date(2024, 3, 31), date(2024, 3, 1)),
        ("month", date(2024, 2, 29), date(2024, 1, 30)),
        ("month", date(2024, 3, 29), date(2024, 3, 1)),
        ("month", date(2026, 1, 15), date(2025, 12, 16)),
        ("quarter", date(2024, 5, 31), date(2024, 3, 1)),
        ("quarter", date(2025, 2, 28), date(2024, 11, 29)),
        ("quarter", date(2024, 2, 29), date(2023, 11, 30)),
    ],
)
def test_windows_at_month_and_year_boundaries_and_a_leap_day(period, as_of, start) -> None:
    assert period_window(period, as_of) == (start, as_of)


# Every transaction type Powens documents and the names they drift to (facts §13,
# docs/powens-api.md §4.8), with the category a row of that type gets from its type alone (a
# wording no keyword knows). Written out: a type falling back to `other` by accident fails here.
TYPE_CATEGORIES = {
    # S3 `TransactionType`
    ("transfer", "-10"): "other", ("transfer", "10"): "income",
    ("order", "-10"): "other", ("check", "-10"): "other",
    ("deposit", "10"): "income", ("payback", "10"): "other",
    ("withdrawal", "-10"): "other", ("loan_payment", "-10"): "housing",
    ("bank", "-10"): "fees", ("card", "-10"): "other", ("deferred_card", "-10"): "other",
    ("summary_card", "-10"): "internal_transfer", ("unknown", "-10"): "other",
    ("unknown", "10"): "other",
    # docs.powens.com (S7, S9)
    ("market_order", "-10"): "savings_and_investments", ("market_fee", "-10"): "fees",
    ("arbitrage", "-10"): "savings_and_investments", ("profit", "10"): "savings_and_investments",
    ("refund", "10"): "other", ("payout", "10"): "income", ("payment", "-10"): "other",
    ("fee", "-10"): "fees",
    # drifts: loan_repayment (S7, S9) = loan_payment; card_summary (S1) = summary_card
    ("loan_repayment", "-10"): "housing", ("card_summary", "-10"): "internal_transfer",
}  # fmt: skip


def test_every_documented_type_and_its_drifted_name_is_categorised_on_purpose() -> None:
    rows = [(amount, kind, "XQZ 123", None) for kind, amount in TYPE_CATEGORIES]
    assert dict(zip(TYPE_CATEGORIES, categorise_frame(frame(*rows)), strict=True)) == (
        TYPE_CATEGORIES
    )


def test_every_type_the_rules_name_is_a_documented_one() -> None:
    """A typo in rules.yaml (`loan_paymnet`) would silently never match."""
    named = {kind for rule in load_rules().rules for kind in (rule.types or ())}
    assert named <= {kind for kind, _ in TYPE_CATEGORIES}
    assert {kind for kind, _ in TYPE_CATEGORIES} <= named
