"""`ensure_primary_open_banking` (docs/spec.md §7): may this tenant sync now?

Healthy only when the slot is bound, the blueprint allows it, and Powens reports the connection
usable (`state ?? error` null, consent not expired: `powens.connection_state`). Codes are compared
case-insensitively (`wrongPass` is `wrongpass`). States that need the user block; the transient
ones of facts §9 (`validating`, `rateLimiting`, `websiteUnavailable`) degrade (retry later); `bug`
and every unknown non-null code block, naming the code. Reasons never quote the bank's
`error_message` (it can hold an authorize URL with a token, or account details).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pfo_pipeline.powens.connection_state import canonical_state, raw_state
from pfo_pipeline.tenancy.blueprint import SLOT_ID, check_tenant_against_blueprint
from pfo_pipeline.tenancy.config import TenantConfig

NEEDS_USER = frozenset(
    {
        "SCARequired",
        "webauthRequired",
        "wrongpass",
        "passwordExpired",
        "actionNeeded",
        "additionalInformationNeeded",
        "decoupled",
    }
)
TRANSIENT = frozenset({"rateLimiting", "websiteUnavailable", "validating"})
# Powens writes naive timestamps in Paris wall-clock time.
POWENS_TZ = ZoneInfo("Europe/Paris")
# An unknown state is an open-enum value from the API; quote it only when it looks like one.
_STATE_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,40}$")


class ConnectionHealth(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class GuardResult:
    """The verdict: `ok` only when healthy; degraded is not ok but says `retry_later`."""

    ok: bool
    health: ConnectionHealth
    reason: str
    state: str | None = None
    retry_later: bool = False


_RANK = {ConnectionHealth.HEALTHY: 0, ConnectionHealth.DEGRADED: 1, ConnectionHealth.BLOCKED: 2}


def _blocked(reason: str, state: str | None = None) -> GuardResult:
    return GuardResult(False, ConnectionHealth.BLOCKED, reason, state)


def _powens_wall_clock(now: datetime) -> datetime:
    """`now` as a naive Paris time, comparable with Powens' `expire`; naive input is taken as is."""
    return now.astimezone(POWENS_TZ).replace(tzinfo=None) if now.tzinfo else now


def _consent_expired(expire: str | None, now: datetime) -> bool:
    """True once `expire` is past; a missing or unreadable `expire` is not evidence of expiry."""
    if not expire:
        return False
    try:
        expiry = datetime.fromisoformat(str(expire))
    except ValueError:
        return False
    if expiry.tzinfo is not None:
        expiry = expiry.astimezone(POWENS_TZ).replace(tzinfo=None)
    return expiry <= _powens_wall_clock(now)


def _named(code: Any) -> str:
    """How a reason names a code: as sent when it looks like one, else a safe description."""
    if isinstance(code, str) and _STATE_SHAPE.match(code):
        return code
    if isinstance(code, str):
        return f"an unrecognised code ({len(code)} characters, not shown)"
    return f"a non-text code ({type(code).__name__})"


def evaluate_connection_state(
    state: Any, expire: str | None, now: datetime, connection_id: Any = None
) -> GuardResult:
    """One Powens connection's verdict; pure, so every state is easy to test. `state` is the code
    as sent (`raw_state`): compared case-insensitively, recorded as sent."""
    label = f"Powens connection {connection_id}" if connection_id is not None else "The connection"
    known = canonical_state(state)
    recorded = None if state is None else _named(state)
    if known in NEEDS_USER:
        return _blocked(
            f"{label} is in state {state}: the user must act in the Powens webview "
            f"(reconnect or confirm) before it can sync.",
            recorded,
        )
    if _consent_expired(expire, now):
        return _blocked(
            f"{label} cannot sync: its PSD2 consent expired at {expire}, so the user must reconnect "
            f"the bank.",
            recorded,
        )
    if state is None:
        return GuardResult(True, ConnectionHealth.HEALTHY, f"{label} is healthy.", None)
    if known in TRANSIENT:
        return GuardResult(
            False,
            ConnectionHealth.DEGRADED,
            f"{label} is in state {state}: the bank is temporarily unavailable, retry later.",
            recorded,
            retry_later=True,
        )
    if known is None:
        return _blocked(
            f"{label} is in state {_named(state)}, a code Powens does not document (facts §9): "
            "its transactions are not synced until someone checks the connection.",
            recorded,
        )
    return _blocked(
        f"{label} is in state {state}: an error Powens does not recover from on its own, "
        f"so the connection needs support or a reconnection.",
        recorded,
    )


class PowensConnections(Protocol):
    """What the guardrail reads of a Powens client (`PowensClient` is one)."""

    def list_connections(self) -> list[dict[str, Any]]: ...

    @property
    def last_server_time(self) -> datetime | None: ...


def ensure_primary_open_banking(
    tenant: TenantConfig, powens: PowensConnections, now: datetime
) -> GuardResult:
    """The tenant-level verdict: binding and blueprint first (no Powens request when they
    block), then the worst Powens connection.

    Connections Powens reports as `active: false` are not synced by Powens and are ignored, unless
    none is active. Errors raised by `list_connections` propagate: the caller knows how to map
    them. Consent expiry is judged by Powens' clock when the client knows it (its `Date` header
    after the fetch), so our own clock's skew cannot block or pass a tenant; else by `now`.
    """
    binding = tenant.primary_open_banking
    if binding is None:
        return _blocked(f"{SLOT_ID} slot is not bound for tenant '{tenant.tenant_id}'.")
    problems = check_tenant_against_blueprint(tenant)
    if problems:
        return _blocked(
            f"Tenant '{tenant.tenant_id}' contradicts its blueprint ({problems[0]}), "
            f"so {SLOT_ID} cannot be used."
        )
    connections = list(powens.list_connections())
    now = powens.last_server_time or now
    if not connections:
        return _blocked(
            f"Tenant '{tenant.tenant_id}' has no Powens connection yet: the user must connect a bank."
        )
    active = [c for c in connections if c.get("active", True) not in (False, 0)]
    if not active:
        return _blocked(
            f"Every Powens connection of tenant '{tenant.tenant_id}' is deactivated: "
            f"the user must reactivate or reconnect a bank."
        )
    verdicts = [
        evaluate_connection_state(raw_state(c), c.get("expire"), now, c.get("id")) for c in active
    ]
    return max(verdicts, key=lambda verdict: _RANK[verdict.health])
