"""`ensure_primary_open_banking` (SPEC §7): may this tenant sync now?

Healthy only when the slot is bound, the blueprint allows it, and Powens reports the connection
usable (`state` null, consent not expired). States that need the user block; transient ones
degrade (retry later); `bug` and anything unknown block. Reasons never quote the bank's message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pfo_pipeline.tenancy.blueprint import SLOT_ID, blueprint_problems
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
PARIS = ZoneInfo("Europe/Paris")


class ConnectionHealth(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class GuardResult:
    ok: bool
    health: ConnectionHealth
    reason: str
    state: str | None = None
    retry_later: bool = False


_RANK = {ConnectionHealth.HEALTHY: 0, ConnectionHealth.DEGRADED: 1, ConnectionHealth.BLOCKED: 2}


def _paris_naive(now: datetime) -> datetime:
    return now.astimezone(PARIS).replace(tzinfo=None) if now.tzinfo else now


def evaluate_connection_state(
    state: str | None, expire: str | None, now: datetime, connection_id: Any = None
) -> GuardResult:
    """One Powens connection's verdict; pure, so every state is easy to test."""
    label = (
        f"Powens connection {connection_id}" if connection_id is not None else "Powens connection"
    )
    if state is None:
        if expire:
            try:
                expiry = datetime.fromisoformat(expire)
            except ValueError:
                expiry = None
            if expiry is not None and expiry.replace(tzinfo=None) <= _paris_naive(now):
                return GuardResult(
                    False,
                    ConnectionHealth.BLOCKED,
                    f"{label}: PSD2 consent expired on {expire}; the user must reconnect.",
                    state,
                )
        return GuardResult(True, ConnectionHealth.HEALTHY, f"{label} is healthy.", state)
    if state in NEEDS_USER:
        return GuardResult(
            False,
            ConnectionHealth.BLOCKED,
            f"{label} is in state {state}: the user must act in the Powens webview before it can sync.",
            state,
        )
    if state in TRANSIENT:
        return GuardResult(
            False,
            ConnectionHealth.DEGRADED,
            f"{label} is in state {state}: temporarily unavailable, retry later.",
            state,
            retry_later=True,
        )
    return GuardResult(
        False,
        ConnectionHealth.BLOCKED,
        f"{label} is in state {state}: an error Powens cannot recover from on its own.",
        state,
    )


def ensure_primary_open_banking(
    tenant: TenantConfig, fetch_connections: Callable[[], list[dict[str, Any]]], now: datetime
) -> GuardResult:
    """The tenant-level verdict: binding and blueprint first, then the worst Powens connection."""
    binding = tenant.primary_open_banking
    if binding is None:
        return GuardResult(
            False,
            ConnectionHealth.BLOCKED,
            f"primaryOpenBanking slot is not bound for tenant '{tenant.tenant_id}'.",
        )
    problems = blueprint_problems(
        blueprint=tenant.blueprint,
        app_id=tenant.app_id,
        capabilities=tenant.capabilities,
        bindings={SLOT_ID: binding},
    )
    if problems:
        return GuardResult(False, ConnectionHealth.BLOCKED, f"{SLOT_ID}: {problems[0]}")
    connections = fetch_connections()
    if not connections:
        return GuardResult(
            False,
            ConnectionHealth.BLOCKED,
            f"Tenant '{tenant.tenant_id}' has no Powens connection yet; the user must connect a bank.",
        )
    verdicts = [
        evaluate_connection_state(c.get("state"), c.get("expire"), now, c.get("id"))
        for c in connections
    ]
    return max(verdicts, key=lambda v: _RANK[v.health])
