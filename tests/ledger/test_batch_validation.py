"""A batch at the ledger's door: the SQL screen lets Pandera judge only the rows it flags, and
the outcome is what Pandera alone gives on the whole batch (the same rows kept, the same rows
quarantined with the same reasons)."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pandera.pandas as pa
import pytest

from pfo_pipeline.ledger import validation
from pfo_pipeline.ledger.records import BankTransactionRecord, failing_rows
from pfo_pipeline.ledger.validation import screen, validate_batch
from tests.ledger.test_contract_sql import GOOD_TRANSACTION, MUTATIONS, frame_of

SCREEN = duckdb.connect()  # in the sync, a connection to the load's database


def rows_with(*changes: dict[str, Any], start: int = 0) -> list[dict[str, Any]]:
    return [
        {**GOOD_TRANSACTION, "id": f"tx-{start + i}", "external_id": str(start + i), **change}
        for i, change in enumerate(changes)
    ]


def pandera_alone(frame: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """external_id -> reasons, as Pandera gives them on the whole frame."""
    try:
        BankTransactionRecord.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        reasons = failing_rows(errors)
        return {
            frame.at[index, "external_id"]: tuple(dict.fromkeys(found))
            for index, found in reasons.items()
        }
    return {}


@pytest.mark.parametrize("mutation", [m for m in MUTATIONS if m != "conforming"])
def test_the_screen_never_passes_a_row_pandera_fails(mutation: str) -> None:
    """Each broken rule amid conforming rows: the screen flags the row whenever Pandera fails
    it, and the batch's outcome is Pandera's own."""
    frame = frame_of(
        BankTransactionRecord, rows_with({}, MUTATIONS[mutation], {}, MUTATIONS["conforming"])
    )
    expected = pandera_alone(frame)
    flagged = screen(BankTransactionRecord, frame, SCREEN)
    assert flagged is not None
    assert {frame.at[i, "external_id"] for i in flagged} >= set(expected)
    valid, rejects = validate_batch(BankTransactionRecord, frame, SCREEN)
    assert {r.external_id: r.reasons for r in rejects} == expected
    assert list(valid["external_id"]) == [x for x in frame["external_id"] if x not in expected]


def test_copies_of_an_id_are_flagged_and_quarantined_as_pandera_says() -> None:
    rows = rows_with({}, {}, {})
    rows[2]["id"] = rows[0]["id"]
    frame = frame_of(BankTransactionRecord, rows)
    assert screen(BankTransactionRecord, frame, SCREEN) == [0, 2]
    valid, rejects = validate_batch(BankTransactionRecord, frame, SCREEN)
    assert {r.external_id: r.reasons for r in rejects} == pandera_alone(frame)
    assert list(valid["external_id"]) == ["1"]


def test_a_conforming_batch_never_reaches_pandera(monkeypatch: pytest.MonkeyPatch) -> None:
    judged: list[int] = []
    real = validation._pandera_reasons

    def counting(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> dict[Any, list[str]]:
        judged.append(len(frame))
        return real(model, frame)

    monkeypatch.setattr(validation, "_pandera_reasons", counting)
    frame = frame_of(BankTransactionRecord, rows_with(*[{}] * 50))
    valid, rejects = validate_batch(BankTransactionRecord, frame, SCREEN)
    assert len(valid) == 50 and not rejects and judged == []
    assert list(valid.columns) == list(BankTransactionRecord.to_schema().columns)

    broken = frame_of(BankTransactionRecord, rows_with(*[{}] * 49, {"currency": "ZZZ"}))
    valid, rejects = validate_batch(BankTransactionRecord, broken, SCREEN)
    assert judged == [1]  # only the flagged row
    assert len(valid) == 49 and [r.external_id for r in rejects] == ["49"]


def test_a_column_of_another_dtype_or_missing_leaves_the_whole_batch_to_pandera() -> None:
    frame = frame_of(BankTransactionRecord, rows_with({}, {}))
    frame["amount"] = frame["amount"].astype(float)
    assert screen(BankTransactionRecord, frame, SCREEN) is None
    valid, rejects = validate_batch(BankTransactionRecord, frame, SCREEN)
    assert valid.empty and {r.external_id: r.reasons for r in rejects} == pandera_alone(frame)
    assert all(r.reasons[0].startswith("amount: failed dtype") for r in rejects)
    with pytest.raises(pa.errors.SchemaErrors, match="status"):
        validate_batch(BankTransactionRecord, frame.drop(columns=["status"]), SCREEN)


def test_extra_columns_are_dropped_as_pandera_filters_them() -> None:
    frame = frame_of(BankTransactionRecord, rows_with({})).assign(helper=1)
    valid, _ = validate_batch(BankTransactionRecord, frame, SCREEN)
    assert "helper" not in valid.columns


def test_text_pandera_accepts_as_objects_gets_pandera_s_own_verdict() -> None:
    """Pandera takes an object column of text for a text field (and fails a number in it): such
    a frame, which the mapping never builds, is left whole to Pandera."""
    frame = frame_of(BankTransactionRecord, rows_with({}, {"currency": "ZZZ"}, {}))
    frame["description"] = frame["description"].astype(object)
    frame.loc[0, "description"] = 12
    valid, rejects = validate_batch(BankTransactionRecord, frame, SCREEN)
    assert {r.external_id: r.reasons for r in rejects} == pandera_alone(frame)
    assert sorted(pandera_alone(frame)) == ["0", "1"] and list(valid["external_id"]) == ["2"]
