"""Tenants file validation, the blueprint, capability switches and the SPEC §7 guardrail."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from pfo_pipeline.tenancy.config import TenantConfigError, load_tenants, resolve_secret
from pfo_pipeline.tenancy.guardrail import (
    ConnectionHealth,
    ensure_primary_open_banking,
    evaluate_connection_state,
)
from tests.conftest import FAMILY, write_tenants_file

NOW = datetime(2026, 11, 24, 9, 0, 0)


def test_the_sample_file_loads_two_tenants() -> None:
    tenants = load_tenants()
    family = tenants[FAMILY]
    binding = family.primary_open_banking
    assert (
        binding.connection_id == "conn-powens-primary" and binding.slot_id == "primaryOpenBanking"
    )
    assert binding.secrets.client_secret == "PFO_POWENS_CLIENT_SECRET"  # a name, not a value
    assert family.capability_enabled("openbanking.transactions.read")


def _broken(tmp_path: Path, mutate) -> Path:
    path = write_tenants_file(tmp_path / "tenants.yaml", "http://127.0.0.1:1/2.0")
    document = yaml.safe_load(path.read_text())
    mutate(document["tenants"][1])
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    "mutate, key",
    [
        (
            lambda t: t["bindings"]["primaryOpenBanking"]["config"].update(environment="prod"),
            "config.environment",
        ),
        (
            lambda t: t["bindings"]["primaryOpenBanking"].update(ownership_mode="managed"),
            "ownership_mode",
        ),
        (
            lambda t: t["bindings"]["primaryOpenBanking"].update(powens_user_idd=2),
            "powens_user_idd",
        ),
        (lambda t: t.pop("app_id"), "app_id"),
        (lambda t: t.update(capabilities={"openbanking.payments.write": True}), "capabilities"),
        (lambda t: t.update(blueprint="other.app@9"), "blueprint"),
    ],
)
def test_a_bad_file_names_the_tenant_and_the_key(tmp_path: Path, mutate, key: str) -> None:
    with pytest.raises(TenantConfigError) as info:
        load_tenants(_broken(tmp_path, mutate))
    message = str(info.value)
    assert "tenant 'tenant.second-family'" in message and key in message


def test_a_secret_pasted_as_a_value_is_refused_without_echoing_it(tmp_path: Path) -> None:
    secret = "sk_live_9f8e7d6c5b4a3f2e1d0c"

    def paste(t: dict) -> None:
        t["bindings"]["primaryOpenBanking"]["secrets"]["client_secret"] = secret

    with pytest.raises(TenantConfigError) as info:
        load_tenants(_broken(tmp_path, paste))
    assert "secrets.client_secret" in str(info.value) and secret not in str(info.value)


def test_duplicate_tenants_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TenantConfigError, match="duplicated"):
        load_tenants(_broken(tmp_path, lambda t: t.update(tenant_id=FAMILY)))


def test_secrets_are_read_through_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFO_SOME_SECRET", "value-1")
    assert resolve_secret("PFO_SOME_SECRET") == "value-1"
    assert resolve_secret("PFO_UNSET_SECRET") is None and resolve_secret(None) is None


def test_a_capability_switched_off_disables_that_sync(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda t: t.update(capabilities={"openbanking.balances.read": False}))
    tenant = load_tenants(path)["tenant.second-family"]
    assert not tenant.capability_enabled("openbanking.balances.read")
    assert tenant.capability_enabled("openbanking.accounts.read")


@pytest.mark.parametrize(
    "state, health",
    [
        (None, ConnectionHealth.HEALTHY),
        ("SCARequired", ConnectionHealth.BLOCKED),
        ("webauthRequired", ConnectionHealth.BLOCKED),
        ("wrongpass", ConnectionHealth.BLOCKED),
        ("passwordExpired", ConnectionHealth.BLOCKED),
        ("actionNeeded", ConnectionHealth.BLOCKED),
        ("additionalInformationNeeded", ConnectionHealth.BLOCKED),
        ("decoupled", ConnectionHealth.BLOCKED),
        ("rateLimiting", ConnectionHealth.DEGRADED),
        ("websiteUnavailable", ConnectionHealth.DEGRADED),
        ("validating", ConnectionHealth.DEGRADED),
        ("bug", ConnectionHealth.BLOCKED),
        ("somethingNew", ConnectionHealth.BLOCKED),
    ],
)
def test_connection_states(state: str | None, health: ConnectionHealth) -> None:
    verdict = evaluate_connection_state(state, "2027-01-01 00:00:00", NOW, 11)
    assert verdict.health is health and verdict.ok is (health is ConnectionHealth.HEALTHY)
    assert verdict.retry_later is (health is ConnectionHealth.DEGRADED)
    if state:
        assert state in verdict.reason


def test_consent_past_expire_blocks() -> None:
    verdict = evaluate_connection_state(None, "2026-11-24 08:59:59", NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and "consent expired" in verdict.reason


def test_unbound_slot_blocks_with_the_original_message(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda t: t.update(bindings={}))
    tenant = load_tenants(path)["tenant.second-family"]
    verdict = ensure_primary_open_banking(tenant, lambda: [], NOW)
    assert not verdict.ok and verdict.reason.startswith("primaryOpenBanking slot is not bound")


def test_the_worst_connection_wins_and_bank_messages_stay_out() -> None:
    tenant = load_tenants()[FAMILY]
    connections = [
        {"id": 1, "state": None, "expire": None},
        {"id": 2, "state": "websiteUnavailable", "error_message": "IBAN FR7612345 blocked"},
        {"id": 3, "state": "wrongpass", "error_message": "https://bank/authorize?state=secret"},
    ]
    verdict = ensure_primary_open_banking(tenant, lambda: connections, NOW)
    assert verdict.health is ConnectionHealth.BLOCKED and verdict.state == "wrongpass"
    assert "secret" not in verdict.reason and "FR76" not in verdict.reason
    assert ensure_primary_open_banking(tenant, lambda: [], NOW).health is ConnectionHealth.BLOCKED
