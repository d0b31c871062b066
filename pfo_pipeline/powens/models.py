"""Typed, defensive parsing of Powens payloads. Rules (from docs/powens-api.md, facts §1-§4, §8):
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
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from pfo_pipeline.powens.connection_state import raw_state
from pfo_pipeline.powens.errors import PowensParseError

POWENS_TZ = ZoneInfo("Europe/Paris")
_DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True, slots=True)
class Currency:
    id: str
    precision: int | None = None
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class PowensUser:
    id: int
    signin: datetime | None
    platform: str | None


@dataclass(frozen=True, slots=True)
class PowensConnector:
    id: int | None
    uuid: str | None
    name: str | None
    logo_url: str | None


@dataclass(frozen=True, slots=True)
class PowensConnection:
    id: int
    id_user: int | None
    id_connector: int | None
    state: str | None
    last_update: datetime | None
    expire: datetime | None
    active: bool
    connector: PowensConnector | None
    error_message: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PowensAccount:
    id: int
    id_connection: int | None
    id_user: int | None
    id_parent: int | None
    type: str | None
    name: str | None
    original_name: str | None
    balance: Decimal | None
    coming: Decimal | None
    currency: Currency | None
    usage: str | None
    ownership: str | None
    company_name: str | None
    opening_date: date | None
    last_update: datetime | None
    deleted: datetime | None
    disabled: datetime | None
    error: str | None
    loan: dict[str, Any] | None = field(default=None, repr=False)
    number: str | None = field(default=None, repr=False)
    iban: str | None = field(default=None, repr=False)
    bic: str | None = field(default=None, repr=False)


# Not frozen: a frozen dataclass's __init__ sets each of the 27 fields through object.__setattr__,
# 7 us a row, 7 s of a million-row sync. Nothing downstream mutates a parsed transaction.
@dataclass(slots=True)
class PowensTransaction:
    id: int
    id_account: int
    date: date
    rdate: date | None
    vdate: date | None
    bdate: date | None
    application_date: date | None
    date_scraped: datetime | None
    last_update: datetime | None
    deleted: datetime | None
    value: Decimal
    original_value: Decimal | None
    original_currency: Currency | None
    type: str | None
    coming: bool
    active: bool
    categories: tuple[str, ...]
    id_category: int | None
    wording: str | None = field(default=None, repr=False)
    simplified_wording: str | None = field(default=None, repr=False)
    original_wording: str | None = field(default=None, repr=False)
    counterparty_label: str | None = field(default=None, repr=False)
    counterparty_account: str | None = field(default=None, repr=False)
    counterparty_type: str | None = None
    card: str | None = field(default=None, repr=False)


# --- scalar parsers -------------------------------------------------------------------------


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


def _require_mapping(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PowensParseError(what, f"expected an object, got {type(raw).__name__}")
    return raw


# --- record parsers ------------------------------------------------------------------------


def parse_user(raw: Any) -> PowensUser:
    raw = _require_mapping(raw, "user")
    return PowensUser(
        id=parse_int(raw.get("id"), "id"),  # type: ignore[arg-type]
        signin=parse_datetime(raw.get("signin"), "signin"),
        platform=parse_str(raw.get("platform"), "platform"),
    )


def parse_connector(raw: Any) -> PowensConnector:
    raw = _require_mapping(raw, "connector")
    urls = raw.get("urls")  # S3: a list of the bank's websites; older payloads: {"logo": …}
    logo = None
    if isinstance(urls, dict):
        logo = urls.get("logo") if isinstance(urls.get("logo"), str) else None
    return PowensConnector(
        id=parse_int(raw.get("id"), "id", required=False),
        uuid=parse_str(raw.get("uuid"), "uuid"),
        name=parse_str(raw.get("name"), "name"),
        logo_url=logo,
    )


def parse_connection(raw: Any) -> PowensConnection:
    raw = _require_mapping(raw, "connection")
    connector = raw.get("connector")
    return PowensConnection(
        id=parse_int(raw.get("id"), "id"),  # type: ignore[arg-type]
        id_user=parse_int(raw.get("id_user"), "id_user", required=False),
        id_connector=parse_int(raw.get("id_connector"), "id_connector", required=False),
        state=parse_str(raw_state(raw), "state"),
        last_update=parse_datetime(raw.get("last_update"), "last_update"),
        expire=parse_datetime(raw.get("expire"), "expire"),
        active=parse_bool(raw.get("active"), "active", default=True),
        connector=parse_connector(connector) if isinstance(connector, dict) else None,
        error_message=parse_str(raw.get("error_message"), "error_message"),
    )


def parse_account(raw: Any) -> PowensAccount:
    raw = _require_mapping(raw, "account")
    loan = raw.get("loan")
    return PowensAccount(
        id=parse_int(raw.get("id"), "id"),  # type: ignore[arg-type]
        id_connection=parse_int(raw.get("id_connection"), "id_connection", required=False),
        id_user=parse_int(raw.get("id_user"), "id_user", required=False),
        id_parent=parse_int(raw.get("id_parent"), "id_parent", required=False),
        type=parse_str(raw.get("type"), "type"),
        name=parse_str(raw.get("name"), "name"),
        original_name=parse_str(raw.get("original_name"), "original_name"),
        balance=parse_money(raw.get("balance"), "balance"),
        coming=parse_money(raw.get("coming"), "coming"),
        currency=parse_currency(raw.get("currency"), "currency"),
        usage=parse_str(raw.get("usage"), "usage"),
        ownership=parse_str(raw.get("ownership"), "ownership"),
        company_name=parse_str(raw.get("company_name"), "company_name"),
        opening_date=parse_date(raw.get("opening_date"), "opening_date"),
        last_update=parse_datetime(raw.get("last_update"), "last_update"),
        deleted=parse_datetime(raw.get("deleted"), "deleted"),
        disabled=parse_datetime(raw.get("disabled"), "disabled"),
        error=parse_str(raw.get("error"), "error"),
        loan=loan if isinstance(loan, dict) else None,
        number=parse_str(raw.get("number"), "number"),
        iban=parse_str(raw.get("iban"), "iban"),
        bic=parse_str(raw.get("bic"), "bic"),
    )


def _parse_categories(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if not isinstance(value, list):
        raise PowensParseError("categories", "expected a list")
    codes = []
    for item in value:
        code = item.get("code") if isinstance(item, dict) else item
        if isinstance(code, str | int) and not isinstance(code, bool):
            codes.append(str(code))
    return tuple(codes)


def parse_transaction(raw: Any) -> PowensTransaction:
    """Parse one transaction; hot path (a million calls per full sync).

    Well-formed records (the vast majority) take `_parse_transaction_fast`, which checks each
    field's type inline instead of calling a parser per field; anything it does not recognise
    falls back to the field-by-field parse below, which gives the same value or the error.
    """
    if type(raw) is dict:
        try:
            return _parse_transaction_fast(raw)
        except _NotPlain:
            pass
    return _parse_transaction_checked(raw)


class _NotPlain(Exception):
    """Internal: a field the fast path leaves to the checked parse. Raised as a new instance
    each time: re-raising one shared instance grows its traceback (and keeps every frame and
    page it passed through alive) for the whole load."""


# The fields the fast parse reads, fetched from a record in one call.
_PLAIN_FIELDS = (
    "id", "id_account", "value", "coming", "active", "id_category", "original_value",
    "counterparty", "original_currency", "categories", "date", "rdate", "vdate", "bdate",
    "application_date", "date_scraped", "last_update", "deleted", "type", "wording",
    "simplified_wording", "original_wording", "card",
)  # fmt: skip
_plain_fields = itemgetter(*_PLAIN_FIELDS)
_COUNTERPARTY_FIELDS = ("label", "account_identification", "type")
_counterparty_fields = itemgetter(*_COUNTERPARTY_FIELDS)
_TEXT_TYPES = frozenset({str, type(None)})
# Parsed dates and datetimes by their text: a page's rows share a handful of days, and the
# objects are immutable. Bounded; None maps to None so a missing value is one lookup too.
_MEMO_LIMIT = 50_000
_days: dict[Any, date | None] = {None: None}
_stamps: dict[Any, datetime | None] = {None: None}
_MISSING = object()


def _fast_date(value: Any) -> date | None:
    """A plain `YYYY-MM-DD` (or None), memoised; anything else raises `_NotPlain`."""
    try:
        known = _days.get(value, _MISSING)
    except TypeError:  # unhashable: not a date string
        raise _NotPlain from None
    if known is not _MISSING:
        return known  # type: ignore[return-value]
    if type(value) is str and len(value) == 10:
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise _NotPlain from None
        return _remember(_days, value, parsed)
    raise _NotPlain


def _fast_datetime(value: Any) -> datetime | None:
    """A naive `YYYY-MM-DD HH:MM:SS` (or None), memoised; anything else (an offset included:
    the checked parse converts it to Paris wall-clock) raises `_NotPlain`."""
    try:
        known = _stamps.get(value, _MISSING)
    except TypeError:
        raise _NotPlain from None
    if known is not _MISSING:
        return known  # type: ignore[return-value]
    if type(value) is str and len(value) == 19:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _NotPlain from None
        if parsed.tzinfo is None:
            return _remember(_stamps, value, parsed)
    raise _NotPlain


def _remember(memo: dict[Any, Any], text: str, parsed: Any) -> Any:
    """Keep a parse by its text (a miss: the rare path), the memo bounded by `_MEMO_LIMIT`."""
    if len(memo) > _MEMO_LIMIT:
        memo.clear()
        memo[None] = None
    memo[text] = parsed
    return parsed


def _parse_transaction_fast(raw: dict[str, Any]) -> PowensTransaction:
    """The common shapes only (ints, plain dates, floats, bools, strings, no categories);
    raises `_NotPlain` for anything else, never a different value than the checked parse."""
    try:
        fields_ = _plain_fields(raw)
    except KeyError:  # a field left out (Powens sends them all, as null when empty)
        fields_ = tuple(map(raw.get, _PLAIN_FIELDS))
    (
        tx_id, id_account, value, coming, active, id_category, original_value, counterparty,
        original_currency, categories, day, rdate, vdate, bdate, application_date, date_scraped,
        last_update, deleted, kind, wording, simplified_wording, original_wording, card,
    ) = fields_  # fmt: skip
    if (
        type(tx_id) is not int
        or type(id_account) is not int
        or type(value) is not float
        or not math.isfinite(value)
        or (coming is not None and type(coming) is not bool)
        or (active is not None and type(active) is not bool)
        or (id_category is not None and type(id_category) is not int)
        or original_currency is not None
        or categories
        or (original_value is not None and type(original_value) is not float)
        or day is None
    ):
        raise _NotPlain
    if original_value is not None:
        if not math.isfinite(original_value):
            raise _NotPlain
        original_value = Decimal(repr(original_value))
    if counterparty is None:
        label = account = counterparty_type = None
    elif type(counterparty) is dict:
        try:
            label, account, counterparty_type = _counterparty_fields(counterparty)
        except KeyError:
            label, account, counterparty_type = map(counterparty.get, _COUNTERPARTY_FIELDS)
    else:
        raise _NotPlain
    text = _TEXT_TYPES
    if not (
        type(kind) in text
        and type(wording) in text
        and type(simplified_wording) in text
        and type(original_wording) in text
        and type(card) in text
        and type(label) in text
        and type(account) in text
        and type(counterparty_type) in text
    ):
        raise _NotPlain
    return PowensTransaction(
        tx_id,
        id_account,
        _fast_date(day),  # type: ignore[arg-type]
        _fast_date(rdate),
        _fast_date(vdate),
        _fast_date(bdate),
        _fast_date(application_date),
        _fast_datetime(date_scraped),
        _fast_datetime(last_update),
        _fast_datetime(deleted),
        Decimal(repr(value)),
        original_value,
        None,
        kind,
        False if coming is None else coming,
        True if active is None else active,
        (),
        id_category,
        wording,
        simplified_wording,
        original_wording,
        label,
        account,
        counterparty_type,
        card,
    )


def _parse_transaction_checked(raw: Any) -> PowensTransaction:
    """Field by field, each through its parser: every shape the API may send, or the error."""
    raw = _require_mapping(raw, "transaction")
    get = raw.get
    counterparty = get("counterparty")
    if counterparty is not None and not isinstance(counterparty, dict):
        raise PowensParseError("counterparty", "expected an object")
    cp = counterparty or {}
    original_currency = get("original_currency")
    return PowensTransaction(
        id=parse_int(get("id"), "id"),  # type: ignore[arg-type]
        id_account=parse_int(get("id_account"), "id_account"),  # type: ignore[arg-type]
        date=parse_date(get("date"), "date", required=True),  # type: ignore[arg-type]
        rdate=parse_date(get("rdate"), "rdate"),
        vdate=parse_date(get("vdate"), "vdate"),
        bdate=parse_date(get("bdate"), "bdate"),
        application_date=parse_date(get("application_date"), "application_date"),
        date_scraped=parse_datetime(get("date_scraped"), "date_scraped"),
        last_update=parse_datetime(get("last_update"), "last_update"),
        deleted=parse_datetime(get("deleted"), "deleted"),
        value=parse_money(get("value"), "value", required=True),  # type: ignore[arg-type]
        original_value=parse_money(get("original_value"), "original_value"),
        original_currency=(
            None
            if original_currency is None
            else parse_currency(original_currency, "original_currency")
        ),
        type=parse_str(get("type"), "type"),
        coming=parse_bool(get("coming"), "coming"),
        active=parse_bool(get("active"), "active", default=True),
        categories=_parse_categories(get("categories")),
        id_category=parse_int(get("id_category"), "id_category", required=False),
        wording=parse_str(get("wording"), "wording"),
        simplified_wording=parse_str(get("simplified_wording"), "simplified_wording"),
        original_wording=parse_str(get("original_wording"), "original_wording"),
        counterparty_label=parse_str(cp.get("label"), "counterparty.label"),
        counterparty_account=parse_str(
            cp.get("account_identification"), "counterparty.account_identification"
        ),
        counterparty_type=parse_str(cp.get("type"), "counterparty.type"),
        card=parse_str(get("card"), "card"),
    )


def raw_transaction_id(raw: Any) -> str | None:
    """Best-effort id of a record that failed to parse, for the quarantine row."""
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, int | str) and not isinstance(value, bool):
            return str(value)
    return None


def is_valid_amount_scale(value: Decimal, places: int = 2) -> bool:
    """The ledger stores DECIMAL(18,2): more decimals would be silently rounded, so refuse them."""
    try:
        return value == value.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:
        return False
