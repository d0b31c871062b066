"""The docs/spec.md §7 guardrail: binding, blueprint, then the worst Powens connection decides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pfo_pipeline.tenancy.config import TenantConfig, load_tenants
from pfo_pipeline.tenancy.guardrail import (
    NEEDS_USER,
    TRANSIENT,
    ConnectionHealth,
    GuardResult,
    ensure_primary_open_banking,
    evaluate_connection_state,
)

NOW = datetime(2026, 11, 24, 9, 0, 0)  # naive: Powens' own Paris wall-clock
LATER = "2027-01-01 00:00:00"


@pytest.fixture(scope="module")
def tenant() -> TenantConfig:
    return load_tenants()["tenant.family-office"]


class _Connections:
    """What the guardrail reads of a Powens client: its connections, and Powens' clock."""

    def __init__(self, *rows: dict[str, Any], clock: datetime | None = None) -> None:
        self.rows = rows
        self.calls: list[int] = []
        self.last_server_time = clock

    def list_connections(self) -> list[dict[str, Any]]:
        self.calls.append(1)
        return [dict(row) for row in self.rows]


def _connections(*rows: dict[str, Any]) -> _Connections:
    return _Connections(*rows)


# Powens' documented connection states and the health each must give, written out rather than
# read from NEEDS_USER / TRANSIENT: moving a state from one list to the other must fail a test.
DOCUMENTED_STATES = {
    "SCARequired": ConnectionHealth.BLOCKED,
    "webauthRequired": ConnectionHealth.BLOCKED,
    "wrongpass": ConnectionHealth.BLOCKED,
    "passwordExpired": ConnectionHealth.BLOCKED,
    "actionNeeded": ConnectionHealth.BLOCKED,
    "additionalInformationNeeded": ConnectionHealth.BLOCKED,
    "decoupled": ConnectionHealth.BLOCKED,
    "rateLimiting": ConnectionHealth.DEGRADED,
    "websiteUnavailable": ConnectionHealth.DEGRADED,
    "validating": ConnectionHealth.DEGRADED,
    "bug": ConnectionHealth.BLOCKED,
}


def test_each_documented_powens_state_gives_its_health() -> None:
    verdicts = {state: evaluate_connection_state(state, LATER, NOW) for state in DOCUMENTED_STATES}
    assert {state: verdict.health for state, verdict in verdicts.items()} == DOCUMENTED_STATES
    assert {state for state, verdict in verdicts.items() if verdict.retry_later} == {
        state for state, health in DOCUMENTED_STATES.items() if health is ConnectionHealth.DEGRADED
    }


@pytest.mark.parametrize("state", sorted(NEEDS_USER))
def test_states_that_need_the_user_block(state: str) -> None:
    verdict = evaluate_connection_state(state, LATER, NOW, 11)
    assert verdict == GuardResult(False, ConnectionHealth.BLOCKED, verdict.reason, state, False)
    assert state in verdict.reason and "user must" in verdict.reason
    assert verdict.reason.count(".") <= 2 and verdict.reason.endswith(".")


@pytest.mark.parametrize("state", sorted(TRANSIENT))
def test_transient_states_degrade_and_ask_to_retry_later(state: str) -> None:
    verdict = evaluate_connection_state(state, LATER, NOW)
    assert verdict.health is ConnectionHealth.DEGRADED
    assert verdict.ok is False and verdict.retry_later is True
    assert state in verdict.reason and "retry later" in verdict.reason


@pytest.mark.parametrize("state", ["bug", "somethingNewFromPowens"])
def test_bug_and_unknown_states_block(state: str) -> None:
    verdict = evaluate_connection_state(state, LATER, NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and not verdict.retry_later
    assert state in verdict.reason and verdict.state == state


def test_an_unknown_state_that_is_not_an_enum_value_is_not_quoted() -> None:
    odd = "see https://bank.example/authorize?state=abc123 for FR7630004000031234567890143"
    verdict = evaluate_connection_state(odd, LATER, NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and "unrecognised" in verdict.reason
    assert "abc123" not in verdict.reason and "FR76" not in verdict.reason


def test_a_null_state_is_healthy() -> None:
    verdict = evaluate_connection_state(None, LATER, NOW)
    assert verdict == GuardResult(True, ConnectionHealth.HEALTHY, verdict.reason, None, False)
    assert evaluate_connection_state(None, None, NOW).ok  # no expiry known: not evidence of one


def test_consent_past_expire_blocks_whatever_the_state() -> None:
    for state in (None, "rateLimiting"):
        verdict = evaluate_connection_state(state, "2026-11-24 08:59:59", NOW)
        assert verdict.health is ConnectionHealth.BLOCKED and not verdict.retry_later
        assert "consent expired" in verdict.reason and "reconnect" in verdict.reason
    assert evaluate_connection_state(None, "2026-11-24 09:00:01", NOW).ok


def test_expire_is_paris_wall_clock_when_now_is_aware() -> None:
    expire = "2026-11-24 10:30:00"  # Paris, UTC+1 in November: 09:30 UTC
    assert evaluate_connection_state(None, expire, datetime(2026, 11, 24, 9, 15, tzinfo=UTC)).ok
    late = evaluate_connection_state(None, expire, datetime(2026, 11, 24, 9, 45, tzinfo=UTC))
    assert late.health is ConnectionHealth.BLOCKED


def test_an_unreadable_expire_is_ignored() -> None:
    assert evaluate_connection_state(None, "not a date", NOW).ok


def test_an_unbound_slot_blocks_before_asking_powens(tenant: TenantConfig) -> None:
    unbound = tenant.model_copy(update={"bindings": {}})
    fetch = _connections({"id": 1, "state": None})
    verdict = ensure_primary_open_banking(unbound, fetch, NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and not verdict.ok
    assert verdict.reason.startswith("primaryOpenBanking slot is not bound")
    assert "'tenant.family-office'" in verdict.reason
    assert fetch.calls == []


def test_a_blueprint_contradiction_blocks(tenant: TenantConfig) -> None:
    binding = tenant.primary_open_banking
    assert binding is not None
    managed = tenant.model_copy(
        update={
            "bindings": {
                "primaryOpenBanking": binding.model_copy(update={"ownership_mode": "managed"})
            }
        }
    )
    verdict = ensure_primary_open_banking(managed, _connections({"id": 1, "state": None}), NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and "ownership_mode" in verdict.reason


def test_no_connection_blocks(tenant: TenantConfig) -> None:
    verdict = ensure_primary_open_banking(tenant, _connections(), NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and "no Powens connection" in verdict.reason


def test_a_healthy_connection_passes(tenant: TenantConfig) -> None:
    fetch = _connections({"id": 7, "state": None, "expire": LATER, "active": True})
    verdict = ensure_primary_open_banking(tenant, fetch, NOW)
    assert verdict.ok and verdict.health is ConnectionHealth.HEALTHY and fetch.calls == [1]  # type: ignore[attr-defined]


def test_the_worst_connection_wins_and_bank_messages_stay_out(tenant: TenantConfig) -> None:
    healthy = {"id": 1, "state": None, "expire": LATER}
    degraded = {"id": 2, "state": "websiteUnavailable", "error_message": "IBAN FR7612345 down"}
    blocked = {"id": 3, "state": "wrongpass", "error_message": "https://bank/auth?state=s3cr3t"}
    verdict = ensure_primary_open_banking(tenant, _connections(healthy, degraded, blocked), NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and verdict.state == "wrongpass"
    assert "connection 3" in verdict.reason
    assert "s3cr3t" not in verdict.reason and "FR76" not in verdict.reason

    verdict = ensure_primary_open_banking(tenant, _connections(healthy, degraded), NOW)
    assert verdict.health is ConnectionHealth.DEGRADED and verdict.retry_later
    assert "FR76" not in verdict.reason


def test_deactivated_connections_are_ignored_unless_none_is_active(tenant: TenantConfig) -> None:
    off = {"id": 1, "state": "wrongpass", "active": False}
    on = {"id": 2, "state": None, "expire": LATER, "active": True}
    assert ensure_primary_open_banking(tenant, _connections(off, on), NOW).ok
    verdict = ensure_primary_open_banking(tenant, _connections(off), NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and "deactivated" in verdict.reason


def test_a_failing_fetch_propagates(tenant: TenantConfig) -> None:
    class Unreachable(_Connections):
        def list_connections(self) -> list[dict[str, Any]]:
            raise ConnectionError("powens unreachable")

    with pytest.raises(ConnectionError, match="powens unreachable"):
        ensure_primary_open_banking(tenant, Unreachable(), NOW)


# --- issue 25: `state ?? error`, codes compared case-insensitively, unknown codes block --------


@pytest.mark.parametrize(
    "connection, health, recorded",
    [
        ({"id": 1, "error": "wrongpass"}, ConnectionHealth.BLOCKED, "wrongpass"),  # legacy (S1)
        ({"id": 1, "state": None, "error": "SCARequired"}, ConnectionHealth.BLOCKED, "SCARequired"),
        ({"id": 1, "state": "wrongPass"}, ConnectionHealth.BLOCKED, "wrongPass"),  # S4's spelling
        ({"id": 1, "error": "WEBSITEUNAVAILABLE"}, ConnectionHealth.DEGRADED, "WEBSITEUNAVAILABLE"),
        ({"id": 1, "state": "validating"}, ConnectionHealth.DEGRADED, "validating"),
        ({"id": 1, "state": None, "error": None}, ConnectionHealth.HEALTHY, None),
        ({"id": 1}, ConnectionHealth.HEALTHY, None),
    ],
)
def test_state_falls_back_to_the_legacy_error_field_in_any_case(
    tenant, connection, health, recorded
) -> None:
    verdict = ensure_primary_open_banking(tenant, _connections(connection), NOW)
    assert verdict.health is health and verdict.state == recorded


@pytest.mark.parametrize("code", ["notSupported", "accountLocked", "SCARequiredV2", ""])
def test_every_unknown_code_blocks_and_is_named(tenant, code: str) -> None:
    """S1: "Additional error codes may be added in the future": one we do not know needs a look,
    so the connection's transactions are not synced, and the reason names the code."""
    verdict = ensure_primary_open_banking(tenant, _connections({"id": 7, "state": code}), NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and not verdict.ok
    assert "does not document" in verdict.reason and "Powens connection 7" in verdict.reason
    if code:
        assert code in verdict.reason and verdict.state == code


def test_a_code_that_is_not_text_blocks_without_being_quoted(tenant) -> None:
    verdict = ensure_primary_open_banking(
        tenant, _connections({"id": 3, "error": {"code": "x"}}), NOW
    )
    assert verdict.health is ConnectionHealth.BLOCKED and "non-text code (dict)" in verdict.reason


def test_a_connection_deactivated_as_zero_is_not_synced(tenant) -> None:
    """Booleans may arrive as 0/1 (docs/powens-api.md §1)."""
    verdict = ensure_primary_open_banking(
        tenant, _connections({"id": 1, "state": None, "active": 0}), NOW
    )
    assert verdict.health is ConnectionHealth.BLOCKED and "deactivated" in verdict.reason


def test_consent_expiry_is_judged_on_powens_clock_when_the_client_knows_it(tenant) -> None:
    """Our own clock's skew cannot pass a tenant whose consent Powens' clock says expired."""
    expire = "2026-11-24 10:30:00"  # Paris wall-clock, as Powens writes it
    ours = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 10:00 in Paris: not expired by our clock
    row = {"id": 7, "state": None, "expire": expire}
    assert ensure_primary_open_banking(tenant, _Connections(row), ours).ok
    powens_later = datetime(2026, 11, 24, 10, 45)  # Powens' `Date`, as naive Paris time
    verdict = ensure_primary_open_banking(tenant, _Connections(row, clock=powens_later), ours)
    assert verdict.health is ConnectionHealth.BLOCKED and "consent expired" in verdict.reason
