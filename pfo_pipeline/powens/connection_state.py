"""A connection's state code as Powens sends it, whatever the payload's age or spelling.

- `state` is null when the last sync succeeded, else a code (S3 `ConnectionState`, S4). Legacy
  payloads carry `error` instead, and S3 still lists both: read `state ?? error` (facts §9, S1).
- Spelling drifts in case: the enum says `wrongpass` (S3), the connect docs `wrongPass` (S4).
  Codes are compared case-insensitively against the documented ones (facts §9).
- The list is open: "Additional error codes may be added in the future" (S1). An unknown code is
  kept as sent, for the guardrail to treat as needing action and to name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# S3 `ConnectionState` (the same list in S4), in the spelling the spec uses.
DOCUMENTED_STATES = (
    "SCARequired",
    "webauthRequired",
    "additionalInformationNeeded",
    "decoupled",
    "validating",
    "actionNeeded",
    "passwordExpired",
    "wrongpass",
    "rateLimiting",
    "websiteUnavailable",
    "bug",
)
_BY_LOWER = {code.lower(): code for code in DOCUMENTED_STATES}


def raw_state(connection: Mapping[str, Any]) -> Any:
    """`state`, falling back to the legacy `error` when `state` is null or absent (S1, S3)."""
    state = connection.get("state")
    return state if state is not None else connection.get("error")


def canonical_state(code: Any) -> str | None:
    """The documented spelling of a code (`wrongPass` -> `wrongpass`), None if undocumented."""
    if not isinstance(code, str):
        return None
    return _BY_LOWER.get(code.strip().lower())
