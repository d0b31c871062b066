"""Switchable faults and latency: what the emulator does to requests besides answering them,
and the documented Powens behaviours it can take on (all off by default, where it follows S3's
schemas: docs/powens-api.md §13 lists each with its source).

Set at start (`EmulatorConfig.faults`, `pfo emulator serve --faults … --latency-ms …`) and at run
time (`POST /2.0/__emulator/faults`). Validated on construction, so a bad value is refused where it
is set instead of turning every later request into a 500.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

INTEGER_FAULTS = frozenset(
    {"seed", "churn_per_page", "backdated_import_rows", "late_change_on_last_page"}
)
BOOLEAN_FAULTS = frozenset(
    {
        "month_window_without_min_date",
        "legacy_connection_error",
        "lists_without_links",
        "lists_without_total",
        "offset_timestamps",
    }
)
# Transaction type names: S3's enum, or the names docs.powens.com and integrators use (S1, S7, S9).
TRANSACTION_TYPE_NAMES = ("spec", "drifted")
# What a user without accounts gets on its lists: S3's 400, or the 409 S8 mocks.
NO_ACCOUNT_STATUSES = (400, 409)


class FaultConfigError(ValueError):
    """A fault setting the emulator refuses; `key` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _rate_or_duration(key: str, value: Any, *, expected: str, upper: float | None) -> float:
    """A finite float >= 0 (and <= `upper`): NaN or "abc" would otherwise fail every request later."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(key, f"must be {expected}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (upper is not None and number > upper):
        raise FaultConfigError(key, f"must be {expected}, got {value!r}")
    return number


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultConfigError(key, f"must be an integer >= 0, got {value!r}")
    return value


def _connection_states(key: str, value: Any) -> dict[int, str]:
    if not isinstance(value, Mapping):
        raise FaultConfigError(key, f"must map user ids to states, got {value!r}")
    states: dict[int, str] = {}
    for user, state in value.items():
        if isinstance(user, bool) or not isinstance(user, int) or user < 1:
            raise FaultConfigError(key, f"user ids must be integers >= 1, got {user!r}")
        if not isinstance(state, str):
            raise FaultConfigError(key, f"the state of user {user} must be a string, got {state!r}")
        states[user] = state
    return states


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FaultConfigError(key, f"must be true or false, got {value!r}")


def _no_accounts(key: str, value: Any) -> dict[int, int]:
    if not isinstance(value, Mapping):
        raise FaultConfigError(key, f"must map user ids to an HTTP status, got {value!r}")
    statuses: dict[int, int] = {}
    for user, status in value.items():
        if isinstance(user, bool) or not isinstance(user, int) or user < 1:
            raise FaultConfigError(key, f"user ids must be integers >= 1, got {user!r}")
        if status not in NO_ACCOUNT_STATUSES or isinstance(status, bool):
            raise FaultConfigError(key, f"the status must be 400 or 409, got {status!r}")
        statuses[user] = status
    return statuses


def _to_number(
    key: str, raw: str, kind: type[int] | type[float], what: str = "the value"
) -> int | float:
    """CLI text to a number, the error naming the setting (validation happens in FaultConfig)."""
    try:
        return kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise FaultConfigError(key, f"{what} must be {expected}, got {raw!r}") from None


def _validated(name: str, value: Any) -> Any:
    if name.startswith("rate_"):
        return _rate_or_duration(name, value, expected="a number in [0, 1]", upper=1.0)
    if name.endswith("_s"):
        return _rate_or_duration(name, value, expected="a number of seconds >= 0", upper=None)
    if name.endswith("_ms"):
        expected = "a number of milliseconds >= 0"
        return _rate_or_duration(name, value, expected=expected, upper=None)
    if name in INTEGER_FAULTS:
        return _count(name, value)
    if name in BOOLEAN_FAULTS:
        return _flag(name, value)
    if name == "transaction_types":
        if value not in TRANSACTION_TYPE_NAMES:
            raise FaultConfigError(name, f"must be one of {TRANSACTION_TYPE_NAMES}, got {value!r}")
        return value
    if name == "no_accounts":
        return _no_accounts(name, value)
    return _connection_states(name, value)


@dataclass
class FaultConfig:
    """Switchable faults; request-level ones are drawn per request from `seed`.

    `latency_ms` + `jitter_ms` delay every Powens route (not the `__emulator` control routes) by
    latency + jitter × u, u in [0, 1) drawn per request from `seed` on a stream of its own (so
    latency never changes which requests the other faults hit). The wait is an async sleep:
    concurrent requests overlap.
    """

    rate_429: float = 0.0
    retry_after_s: float = 0.05
    rate_503: float = 0.0
    rate_slow: float = 0.0
    slow_s: float = 2.0
    rate_token_expiry: float = 0.0
    connection_states: dict[int, str] = field(default_factory=dict)
    rate_malformed: float = 0.0
    # Upstream changes applied before each transactions page after the first (see churn.py).
    churn_per_page: int = 0
    # An import that commits right after the first transactions page, its rows stamped this long
    # before the clock; one more change, stamped a minute before the clock, made just before the
    # first page that ends a chain of several (churn.py). Each happens once per setting.
    backdated_import_rows: int = 0
    backdated_import_s: float = 3 * 3600.0
    late_change_on_last_page: int = 0
    # Documented Powens behaviours (docs/powens-api.md §13):
    # a transactions list without `min_date` keeps the last month only (S2);
    month_window_without_min_date: bool = False
    # these users have no account yet: their lists answer `noAccount` with this status (S3, S8);
    no_accounts: dict[int, int] = field(default_factory=dict)
    # connections carry the legacy `error` (and `id_bank`) instead of `state` (S1);
    legacy_connection_error: bool = False
    # lists carry no `_links` (S3 documents offset/limit only) / no `total` (S3 lists none);
    lists_without_links: bool = False
    lists_without_total: bool = False
    # this share of records sends every field S3 marks nullable as null (not `deleted`, which
    # would undelete it, nor `value`: the next switch); this share of transactions, a null value;
    rate_null_fields: float = 0.0
    rate_null_value: float = 0.0
    # transaction types by S3's enum or by the drifted names (loan_repayment, card_summary, fee);
    transaction_types: str = "spec"
    # timestamps with an explicit offset (UTC), as some connectors send them (S6).
    offset_timestamps: bool = False
    # Real Powens answers in hundreds of milliseconds.
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            setattr(self, f.name, _validated(f.name, getattr(self, f.name)))

    @classmethod
    def parse(cls, text: str) -> FaultConfig:
        """`rate_429=0.1,rate_503=0.05,connection_states=1:SCARequired` (CLI form)."""
        values: dict[str, Any] = {}
        names = {f.name: f for f in fields(cls)}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, _, raw = item.partition("=")
            if key not in names:
                raise FaultConfigError(key, f"unknown fault; known: {', '.join(names)}")
            if key == "connection_states":
                user, _, state = raw.partition(":")
                values.setdefault(key, {})[_to_number(key, user, int, "a user id")] = state
            elif key == "no_accounts":
                user, _, status = raw.partition(":")
                values.setdefault(key, {})[_to_number(key, user, int, "a user id")] = _to_number(
                    key, status or "400", int, "the status"
                )
            elif key in BOOLEAN_FAULTS:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise FaultConfigError(key, f"must be true or false, got {raw!r}")
                values[key] = raw.lower() in ("true", "1")
            elif key == "transaction_types":
                values[key] = raw
            else:
                values[key] = _to_number(key, raw, int if key in INTEGER_FAULTS else float)
        return cls(**values)

    @classmethod
    def from_json(cls, body: Any) -> FaultConfig:
        """The control route's JSON object; user ids arrive as strings (JSON object keys)."""
        if not isinstance(body, dict):
            raise FaultConfigError("body", f"must be a JSON object, got {body!r}")
        names = {f.name for f in fields(cls)}
        for key in body:
            if key not in names:
                raise FaultConfigError(key, f"unknown fault; known: {', '.join(sorted(names))}")
        data = dict(body)
        for key in ("connection_states", "no_accounts"):
            by_user = data.get(key)
            if isinstance(by_user, dict):
                data[key] = {
                    _to_number(key, k, int, "a user id") if isinstance(k, str) else k: v
                    for k, v in by_user.items()
                }
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The inverse of `from_json` (JSON object keys are strings, so user ids become strings)."""
        body = asdict(self)
        body["connection_states"] = {str(k): v for k, v in self.connection_states.items()}
        body["no_accounts"] = {str(k): v for k, v in self.no_accounts.items()}
        return body
