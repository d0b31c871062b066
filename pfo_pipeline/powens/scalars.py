"""Powens' scalar fields parsed defensively, one function per kind; the rules every record parser
follows (docs/powens-api.md, facts §1-§4, §8):
- datetimes stay naive, as Powens sends them (Europe/Paris wall-clock); an offset-carrying string is
  converted to Paris wall-clock and made naive so naive and aware values are never compared;
- money is `Decimal`; NaN, infinities, booleans and free text are rejected, never coerced;
- `currency` may be an object `{id, precision, ...}` or a bare code;
- booleans may arrive as 0/1; enums are open (unknown strings load); unknown keys are ignored.
A field that breaks these rules raises `PowensParseError(field, reason)` for that record only.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pfo_pipeline.powens.errors import PowensParseError
from pfo_pipeline.powens.models import Currency

POWENS_TZ = ZoneInfo("Europe/Paris")
_DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$")


def parse_int(value: Any, name: str, *, required: bool = True) -> int | None:
    """Powens ids are positive int64; a numeric string is accepted, a float or bool is not."""
    if type(value) is int:
        return value
    if value is None:
        if required:
            raise PowensParseError(name, "missing")
        return None
    if isinstance(value, bool):
        raise PowensParseError(name, "expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise PowensParseError(name, f"expected an integer, got {type(value).__name__}")


def parse_money(value: Any, name: str, *, required: bool = False) -> Decimal | None:
    """JSON number -> exact Decimal via its shortest repr (so 16.22 stays 16.22)."""
    if type(value) is float and math.isfinite(value):
        return Decimal(repr(value))
    if value is None:
        if required:
            raise PowensParseError(name, "missing")
        return None
    if isinstance(value, bool):
        raise PowensParseError(name, "expected a number, got a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PowensParseError(name, "NaN or infinite amounts are rejected")
        return Decimal(repr(value))
    if isinstance(value, str) and _DECIMAL_TEXT.match(value):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PowensParseError(name, "NaN or infinite amounts are rejected")
        return value
    raise PowensParseError(name, f"expected a number, got {type(value).__name__}")


def parse_date(value: Any, name: str, *, required: bool = False) -> date | None:
    """`YYYY-MM-DD`; a datetime string is cut to its date; impossible dates are errors."""
    if type(value) is str and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise PowensParseError(name, f"not a valid date ({exc})") from None
    if value is None or value == "":
        if required:
            raise PowensParseError(name, "missing")
        return None
    if not isinstance(value, str):
        raise PowensParseError(name, f"expected a date string, got {type(value).__name__}")
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise PowensParseError(name, f"not a valid date ({exc})") from None


def parse_datetime(value: Any, name: str) -> datetime | None:
    """Naive `YYYY-MM-DD HH:MM:SS` kept as is; an aware value becomes naive Paris wall-clock."""
    if type(value) is str and len(value) == 19:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the general path below reports it
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PowensParseError(name, f"expected a datetime string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PowensParseError(name, f"not a valid datetime ({exc})") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(POWENS_TZ).replace(tzinfo=None)
    return parsed


def parse_bool(value: Any, name: str, *, default: bool = False) -> bool:
    """true/false or the 0/1 some endpoints send; anything else is an error."""
    if type(value) is bool:
        return value
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise PowensParseError(name, f"expected a boolean, got {type(value).__name__}")


def parse_str(value: Any, name: str) -> str | None:
    """Optional text; numbers are not silently turned into text."""
    if value is None or type(value) is str:
        return value
    raise PowensParseError(name, f"expected a string, got {type(value).__name__}")


def parse_currency(value: Any, name: str) -> Currency | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Currency(id=value)
    if isinstance(value, dict):
        code = value.get("id")
        if not isinstance(code, str) or not code:
            raise PowensParseError(f"{name}.id", "missing currency code")
        precision = value.get("precision")
        if precision is not None and (
            isinstance(precision, bool) or not isinstance(precision, int)
        ):
            raise PowensParseError(f"{name}.precision", "expected an integer")
        return Currency(id=code, precision=precision, symbol=parse_str(value.get("symbol"), name))
    raise PowensParseError(name, f"expected a currency object or code, got {type(value).__name__}")


def require_mapping(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PowensParseError(what, f"expected an object, got {type(raw).__name__}")
    return raw
