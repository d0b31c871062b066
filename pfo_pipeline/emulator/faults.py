"""Switchable faults and latency: what the emulator does to requests besides answering them.

Set at start (`EmulatorConfig.faults`, `pfo emulator serve --faults … --latency-ms …`) and at run
time (`POST /2.0/__emulator/faults`). Validated on construction, so a bad value is refused where it
is set instead of turning every later request into a 500.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

INTEGER_FAULTS = frozenset({"seed", "churn_per_page"})


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
        states = data.get("connection_states")
        if isinstance(states, dict):
            data["connection_states"] = {
                _to_number("connection_states", k, int, "a user id") if isinstance(k, str) else k: v
                for k, v in states.items()
            }
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The inverse of `from_json` (JSON object keys are strings, so user ids become strings)."""
        body = asdict(self)
        body["connection_states"] = {str(k): v for k, v in self.connection_states.items()}
        return body
