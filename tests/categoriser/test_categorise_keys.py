"""`categorise_frame` numbers its distinct keys by factorising; the categories must be exactly
those of running the rules on every row, whatever the dtypes (object or Arrow-backed strings),
the missing values and the amount bounds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfo_pipeline.categoriser import categorise_frame, load_rules
from pfo_pipeline.categoriser.rules import RuleSet, default_rules, normalise

KINDS = st.sampled_from([None, "card", "transfer", "order", "bank", "fee", "loan_payment", "x"])
TEXTS = st.sampled_from(
    [None, "", "CB CARREFOUR", "Carrefour City", "prlv sepa électricité EDF", "VIR SALAIRE",
     "RETRAIT DAB", "ECHEANCE PRET", "x", "SNCF", "cb\u00a0fnac"]
)  # fmt: skip
AMOUNTS = st.decimals(min_value=-5000, max_value=5000, places=2, allow_nan=False)
ROWS = st.lists(st.tuples(AMOUNTS, KINDS, TEXTS, TEXTS), min_size=1, max_size=60)

BOUNDED = """rules:
  - {category: groceries, keywords: [CARREFOUR], max_amount: 50}
  - {category: housing, keywords: [CARREFOUR], min_amount: 50.01}
  - {category: income, sign: credit, min_amount: 1000}
  - {category: fees, types: [fee]}
"""


def _row_by_row(frame: pd.DataFrame, rules: RuleSet) -> list[str]:
    """The rules on each row by itself: what the keyed evaluation must equal."""
    out = []
    for amount, kind, description, counterparty in frame[
        ["amount", "transaction_type", "description", "counterparty_name"]
    ].itertuples(index=False):
        text = normalise(None if pd.isna(description) else description) + normalise(
            None if pd.isna(counterparty) else counterparty
        )
        kind = "unknown" if pd.isna(kind) else kind
        out.append(rules.categorise(kind, text, bool(amount < 0), abs(amount)))
    return out


def _frame(rows: list[tuple], arrow: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["amount", "transaction_type", "description", "counterparty_name"]
    )
    if arrow:
        for name in ("transaction_type", "description", "counterparty_name"):
            frame[name] = frame[name].astype("string[pyarrow]")
    return frame


@pytest.fixture(scope="module")
def bounded_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    path: Path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(BOUNDED)
    return load_rules(path)


@settings(max_examples=150, deadline=None)
@given(rows=ROWS, arrow=st.booleans())
def test_keyed_categories_equal_the_rules_row_by_row(rows: list[tuple], arrow: bool) -> None:
    frame = _frame(rows, arrow)
    assert list(categorise_frame(frame)) == _row_by_row(frame, default_rules())


@settings(max_examples=150, deadline=None)
@given(rows=ROWS, arrow=st.booleans())
def test_amount_bounds_are_part_of_the_key(
    rows: list[tuple], arrow: bool, bounded_rules: RuleSet
) -> None:
    frame = _frame(rows, arrow)
    assert list(categorise_frame(frame, bounded_rules)) == _row_by_row(frame, bounded_rules)


def test_same_words_either_side_of_a_bound_get_their_own_category(bounded_rules) -> None:
    frame = _frame(
        [(Decimal("-20"), "card", "CB CARREFOUR", None), (Decimal("-80"), "card", "CB CARREFOUR", None),
         (Decimal("-20"), "card", "CB CARREFOUR", None)],
        arrow=True,
    )  # fmt: skip
    assert list(categorise_frame(frame, bounded_rules)) == ["groceries", "housing", "groceries"]
