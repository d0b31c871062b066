"""One Pandera validation per batch; failing rows become quarantine rejects, the rest pass."""

from __future__ import annotations

import warnings
from typing import Any

import orjson
import pandas as pd
import pandera.pandas as pa

from pfo_pipeline.ledger.records import failing_rows
from pfo_pipeline.ledger.types import Reject


def validate_batch(
    model: type[pa.DataFrameModel], frame: pd.DataFrame
) -> tuple[pd.DataFrame, list[Reject]]:
    """Validate lazily once; return the valid rows and a reject (with reasons) per failing row."""
    if frame.empty:
        return model.validate(frame, lazy=True), []
    frame = frame.reset_index(drop=True)
    try:
        with warnings.catch_warnings():
            # Pandera's failure-case report concatenates all-NA frames; pandas warns about its own
            # future behaviour, which changes nothing here and would repeat on every bad batch.
            warnings.filterwarnings(
                "ignore", "The behavior of DataFrame concatenation", FutureWarning
            )
            return model.validate(frame, lazy=True), []
    except pa.errors.SchemaErrors as errors:
        reasons = failing_rows(errors)
    bad = frame.index.isin(list(reasons))
    rejects = [
        Reject(
            external_id=_text(frame.at[index, "external_id"]) if "external_id" in frame else None,
            reasons=tuple(dict.fromkeys(reasons[index])),
            record=_row_payload(frame.loc[index]),
        )
        for index in frame.index[bad]
    ]
    good = frame.loc[~bad].reset_index(drop=True)
    return model.validate(good, lazy=False), rejects


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _row_payload(row: pd.Series) -> dict[str, Any]:
    """A mapped row as JSON-able values for the quarantine table."""
    values = {k: (None if v is pd.NA else v) for k, v in row.to_dict().items()}
    return orjson.loads(orjson.dumps(values, default=str))
