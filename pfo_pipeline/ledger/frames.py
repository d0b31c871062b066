"""Record frames with exact types: Arrow decimals for money, dates and naive timestamps, Arrow-backed
text; no binary float and no NaT games on the way to Pandera and the lake."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa

from pfo_pipeline.ledger.records import DAY, MONEY, PROVIDER_TS, TEXT


def typed_frame(
    data: list[dict[str, Any]] | dict[str, list[Any]],
    *,
    money: tuple[str, ...] = (),
    provider_ts: tuple[str, ...] = (),
    days: tuple[str, ...] = (),
    columns: list[str] | None,
) -> pd.DataFrame:
    """Build a frame with exact Arrow decimals, dates and naive timestamps (no float, no NaT games)."""
    if isinstance(data, list):
        assert columns is not None
        data = {name: [row[name] for row in data] for name in columns}
    columns_out: dict[str, pd.Series] = {}
    for name, values in data.items():
        if name in money:
            columns_out[name] = money_series(values)
        elif name in provider_ts:
            columns_out[name] = pd.Series(
                pa.array(values, type=pa.timestamp("us")), dtype=PROVIDER_TS
            )
        elif name in days:
            columns_out[name] = pd.Series(pa.array(values, type=pa.date32()), dtype=DAY)
        else:
            columns_out[name] = text_series(values)
    frame = pd.DataFrame(columns_out)
    return frame


def text_series(values: list[Any] | pa.Array) -> pd.Series:
    """Arrow-backed text straight from Arrow (pandas' own path checks every value in Python);
    anything but str/None takes pandas' path, which turns it into text."""
    if isinstance(values, pa.Array):
        return pd.Series(pd.arrays.ArrowStringArray(values.cast(pa.large_string())), dtype=TEXT)
    try:
        array = pa.array(values, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.Series(values, dtype=TEXT)
    return pd.Series(pd.arrays.ArrowStringArray(array), dtype=TEXT)


def money_series(values: list[Decimal | None]) -> pd.Series:
    """DECIMAL(18,2) without rounding: a value with more decimals becomes null so validation
    quarantines it (the nullable check on the column names the field)."""
    try:
        array = pa.array(values, type=pa.decimal128(18, 2))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        exact = [v if v is None or v == v.quantize(Decimal("0.01")) else None for v in values]
        array = pa.array(exact, type=pa.decimal128(18, 2))
    return pd.Series(array, dtype=MONEY)
