"""One validation per batch; failing rows become quarantine rejects, the rest pass.

The record's SQL contract (`contract_sql`, translated from the Pandera model itself) screens the
whole batch inside DuckDB; Pandera judges only the rows the screen flags, and its reasons go to
quarantine. Why: Pandera's pandas backend on every row held the sync's one Python thread for
about 3 s of a million-row sync (py-spy of `dagster asset materialize`, 2026-12-07); the screen
takes ~18 ms a 12,000-row batch in DuckDB, off the GIL. The screen may flag more than Pandera
fails (a null a check meets), never less: `tests/ledger/test_batch_validation.py` holds that for
every kind of check. A column missing or of another dtype skips the screen and Pandera judges the
whole frame, as before: a wrong dtype quarantines every row with Pandera's reason, a missing
column raises.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import duckdb
import numpy as np
import orjson
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
from pandera.engines import pandas_engine

from pfo_pipeline.lake import registered
from pfo_pipeline.ledger.contract_check import breaks_contract
from pfo_pipeline.ledger.contract_sql import contract_of
from pfo_pipeline.ledger.records import failing_rows
from pfo_pipeline.ledger.types import Reject

_POSITION = "__position"


def validate_batch(
    model: type[pa.DataFrameModel], frame: pd.DataFrame, conn: duckdb.DuckDBPyConnection
) -> tuple[pd.DataFrame, list[Reject]]:
    """Validate once; return the valid rows and a reject (with reasons) per failing row. `conn`
    runs the screen: a connection to the load's database (no second database held in memory),
    for transactions the stage's batch connection."""
    if frame.empty:
        return model.validate(frame, lazy=True), []
    frame = frame.reset_index(drop=True)
    suspects = screen(model, frame, conn)
    if suspects is not None and not suspects:
        return _record_columns(model, frame), []
    judged = frame if suspects is None else frame.iloc[suspects]
    reasons = _pandera_reasons(model, judged)
    bad = frame.index.isin(list(reasons))
    rejects = [
        Reject(
            external_id=_text(frame.at[index, "external_id"]) if "external_id" in frame else None,
            reasons=tuple(dict.fromkeys(reasons[index])),
            record=_row_payload(frame.loc[index]),
        )
        for index in frame.index[bad]
    ]
    return _record_columns(model, frame.loc[~bad].reset_index(drop=True)), rejects


def screen(
    model: type[pa.DataFrameModel], frame: pd.DataFrame, conn: duckdb.DuckDBPyConnection
) -> list[int] | None:
    """Positions of the rows that may break the record (in order), or None when a column is
    missing or has another dtype than the record's (then only Pandera can say what is wrong)."""
    columns = model.to_schema().columns
    for name in columns:
        if name not in frame or not _dtype_fits(model, name, frame[name].dtype):
            return None
    contract = contract_of(model, stored_only=False)
    try:
        table = pa_arrow.Table.from_pandas(frame[list(columns)], preserve_index=False)
    except (pa_arrow.ArrowInvalid, pa_arrow.ArrowTypeError):  # e.g. a number in a text column
        return None
    table = table.append_column(_POSITION, pa_arrow.array(np.arange(len(frame))))
    # Copies of a unique key: grouped once (a window over the batch cost twice the rules).
    flagged = [breaks_contract(contract)] + [
        f'"{name}" IN (SELECT "{name}" FROM _screened_batch GROUP BY 1 HAVING count(*) > 1)'
        for name in contract.unique
    ]
    with registered(conn, _screened_batch=table):
        rows = conn.execute(
            f"SELECT {_POSITION} FROM _screened_batch WHERE {' OR '.join(flagged)} "
            f"ORDER BY {_POSITION}"
        ).fetchall()
    return [position for (position,) in rows]


@cache
def _dtype_fits(model: type[pa.DataFrameModel], name: str, dtype: Any) -> bool:
    """Whether a frame column's dtype is the record's, as Pandera checks it; remembered: for an
    Arrow dtype Pandera first tries `import geopandas`, a failed import (a search of the whole
    `sys.path`) each time, 27 columns a batch (~1 s of a million-row sync, holding the GIL)."""
    return bool(model.to_schema().columns[name].dtype.check(pandas_engine.Engine.dtype(dtype)))


def _pandera_reasons(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> dict[Any, list[str]]:
    """Row index -> Pandera's reasons, from one lazy validation of `frame`."""
    try:
        with warnings.catch_warnings():
            # Pandera's failure-case report concatenates all-NA frames; pandas warns about its own
            # future behaviour, which changes nothing here and would repeat on every bad batch.
            warnings.filterwarnings(
                "ignore", "The behavior of DataFrame concatenation", FutureWarning
            )
            model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return failing_rows(errors)
    return {}


def _record_columns(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as Pandera returns it: the record's columns only (`strict = "filter"`)."""
    columns = model.to_schema().columns
    return frame[[name for name in frame.columns if name in columns]]


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _row_payload(row: pd.Series) -> dict[str, Any]:
    """A mapped row as JSON-able values for the quarantine table."""
    values = {k: (None if v is pd.NA else v) for k, v in row.to_dict().items()}
    return orjson.loads(orjson.dumps(values, default=str))
