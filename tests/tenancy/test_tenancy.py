"""The tenants file (docs/spec.md §3) and the blueprint: strict validation, clear errors, no secret echoed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pfo_pipeline import settings
from pfo_pipeline.tenancy.blueprint import (
    CAP_ACCOUNTS,
    CAP_BALANCES,
    CAP_TRANSACTIONS,
    check_tenant_against_blueprint,
)
from pfo_pipeline.tenancy.config import (
    PowensConnectionConfig,
    TenantConfigError,
    load_tenants,
    read_tenants_file,
    resolve_secret,
)

FAMILY, SECOND = "tenant.family-office", "tenant.second-family"
SAMPLE = yaml.safe_load(settings.SAMPLE_TENANTS_FILE.read_text())


def _write(tmp_path: Path, mutate: Callable[[dict[str, Any]], Any] | None = None) -> Path:
    """The sample document, changed by `mutate`, written to `tmp_path/tenants.yaml`."""
    document = copy.deepcopy(SAMPLE)
    if mutate is not None:
        mutate(document)
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _second(document: dict[str, Any]) -> dict[str, Any]:
    return document["tenants"][1]


def _binding(document: dict[str, Any]) -> dict[str, Any]:
    return _second(document)["bindings"]["primaryOpenBanking"]


def test_the_sample_file_loads_both_tenants_in_file_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.BASE_URL_ENV, raising=False)
    tenants = load_tenants()
    assert list(tenants) == [FAMILY, SECOND]
    family = tenants[FAMILY].primary_open_banking
    second = tenants[SECOND].primary_open_banking
    assert family is not None and second is not None
    assert (family.connection_id, family.powens_user_id) == ("conn-powens-primary", 1)
    assert (second.connection_id, second.powens_user_id) == ("conn-powens-second", 2)
    assert family.slot_id == "primaryOpenBanking" and family.ownership_mode == "byok"
    assert family.integration_key == "openbanking.powens"
    assert family.config.environment == "sandbox" and family.config.region == "eu-west-1"
    assert family.config.resolved_base_url() == "http://127.0.0.1:8765/2.0"
    # The demo family names the demo variables, never the names real credentials use.
    assert family.secrets.client_secret == "PFO_DEMO_POWENS_CLIENT_SECRET"  # a name, not a value
    assert {second.secrets.client_id, second.secrets.webhook_secret} == {
        "PFO_DEMO_POWENS_CLIENT_ID",
        "PFO_DEMO_POWENS_WEBHOOK_SECRET",
    }
    assert family.secrets.api_key is None and second.secrets.api_key is None
    assert set(settings.DEMO_ENV) == {
        name
        for t in tenants.values()
        for name in t.primary_open_banking.secrets.model_dump().values()
        if name
    }
    assert tenants[FAMILY].config_version == 1
    assert check_tenant_against_blueprint(tenants[FAMILY]) == []


def test_pfo_tenants_file_overrides_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, lambda d: d["tenants"].pop(0))
    monkeypatch.setenv(settings.TENANTS_FILE_ENV, str(path))
    assert list(load_tenants()) == [SECOND]


def test_base_url_comes_from_the_domain_when_not_overridden() -> None:
    config = PowensConnectionConfig(environment="production", domain="acme")
    assert config.resolved_base_url() == "https://acme.biapi.pro/2.0"
    trailing = PowensConnectionConfig(environment="sandbox", base_url="http://127.0.0.1:1/2.0/")
    assert trailing.resolved_base_url() == "http://127.0.0.1:1/2.0"
    with pytest.raises(ValidationError):
        PowensConnectionConfig(environment="sandbox", domain="Acme.evil.com/x")


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda d: _binding(d)["config"].update(environment="prod"),
            "bindings.primaryOpenBanking.config.environment: must be 'sandbox' or 'production', "
            "got 'prod'",
        ),
        (
            lambda d: _binding(d).update(powens_user_idd=2),
            "bindings.primaryOpenBanking.powens_user_idd: unknown key (did you mean 'powens_user_id'?)",
        ),
        (lambda d: _second(d).pop("app_id"), "app_id: required key is missing"),
        (lambda d: _binding(d).pop("connection_id"), "primaryOpenBanking.connection_id: required"),
        (
            lambda d: _second(d).update(config_version="1"),
            "config_version: must be a valid integer",
        ),
        (
            lambda d: _binding(d).update(powens_user_id=True),
            "powens_user_id: must be a valid integer",
        ),
        (
            lambda d: _second(d).update(capabilities={CAP_BALANCES: "no"}),
            f"capabilities.{CAP_BALANCES}: must be a valid boolean",
        ),
        (
            lambda d: _second(d).update(capabilities={"openbanking.payments.write": False}),
            "capabilities.openbanking.payments.write: not a capability",
        ),
        (  # switched on: a file must not grant a capability the blueprint does not have
            lambda d: _second(d).update(capabilities={"openbanking.payments.write": True}),
            "capabilities.openbanking.payments.write: not a capability",
        ),
        (lambda d: _second(d).update(blueprint="other.app@9"), "blueprint: unknown blueprint"),
        (lambda d: _second(d).update(app_id="other-app"), "app_id: blueprint"),
        (
            lambda d: _binding(d).update(ownership_mode="managed"),
            "bindings.primaryOpenBanking.ownership_mode: 'managed' is not allowed",
        ),
        (
            lambda d: _binding(d).update(integration_key="openbanking.plaid"),
            "bindings.primaryOpenBanking.integration_key: 'openbanking.plaid' cannot fill",
        ),
        (
            lambda d: _second(d)["bindings"].update(primaryLLM={}),
            "bindings: unknown slot 'primaryLLM'",
        ),
        (
            lambda d: _binding(d)["config"].update(domain=None, base_url=None),
            "bindings.primaryOpenBanking.config: one of domain or base_url is required",
        ),
        (
            lambda d: _binding(d)["config"].update(domain="pfo.sandbox.evil"),
            "config.domain: must be lowercase letters",
        ),
        (
            lambda d: _binding(d)["config"].update(polling_interval_ms=10),
            "config.polling_interval_ms: must be greater than or equal to 60000",
        ),
        (lambda d: _binding(d)["secrets"].pop("client_id"), "secrets.client_id: required"),
    ],
)
def test_a_bad_tenant_names_file_tenant_and_key(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(TenantConfigError) as info:
        load_tenants(path)
    message = str(info.value)
    assert message.startswith(f"tenants file {path}: tenant '{SECOND}': ")
    assert expected in message


def test_a_tenant_without_an_id_is_named_by_its_position(tmp_path: Path) -> None:
    with pytest.raises(TenantConfigError, match=r"tenant #2: tenant_id: required key is missing"):
        load_tenants(_write(tmp_path, lambda d: _second(d).pop("tenant_id")))


@pytest.mark.parametrize("field", ["client_id", "client_secret", "api_key", "webhook_secret"])
def test_a_pasted_secret_is_refused_without_echoing_it(tmp_path: Path, field: str) -> None:
    secret = "sk_live_9f8e7d6c5b4a3f2e1d0c"
    path = _write(tmp_path, lambda d: _binding(d)["secrets"].update({field: secret}))
    with pytest.raises(TenantConfigError) as info:
        load_tenants(path)
    message = str(info.value)
    assert f"secrets.{field}: must be the NAME of an environment variable" in message
    assert secret not in message and "9f8e" not in message


def test_secrets_in_the_wrong_place_or_broken_yaml_are_not_echoed(tmp_path: Path) -> None:
    secret = "sk_live_ZZZ_do_not_print"
    path = _write(tmp_path, lambda d: _binding(d)["config"].update(api_key=secret))
    with pytest.raises(TenantConfigError) as info:
        load_tenants(path)
    assert "config.api_key: unknown key" in str(info.value) and secret not in str(info.value)

    path.write_text(f"tenants:\n  - tenant_id: a\n    secrets: {{client_secret: {secret}: x}}\n")
    with pytest.raises(TenantConfigError) as info:
        load_tenants(path)
    assert "not valid YAML at line 3" in str(info.value) and secret not in str(info.value)


@pytest.mark.parametrize("pasted", ["PZ7Q2K9XW4M1R8TBQ3ZL", "A1B2C3D4E5F6G7H8"])
def test_an_upper_case_secret_is_not_taken_for_a_variable_name(tmp_path: Path, pasted: str) -> None:
    path = _write(tmp_path, lambda d: _binding(d)["secrets"].update(client_secret=pasted))
    with pytest.raises(TenantConfigError) as info:
        load_tenants(path)
    assert "secrets.client_secret: looks like a pasted secret" in str(info.value)
    assert pasted not in str(info.value) and pasted[:6] not in str(info.value)


def test_a_secret_pasted_as_a_key_is_not_echoed(tmp_path: Path) -> None:
    pasted = "sk_live_4b3a2f1e0d9c8b7a"
    path = _write(tmp_path, lambda d: _binding(d)["secrets"].update({pasted: "PFO_X"}))
    with pytest.raises(TenantConfigError) as info:
        load_tenants(path)
    assert "secrets.<unknown key>: unknown key (allowed: client_id" in str(info.value)
    assert pasted not in str(info.value) and "4b3a" not in str(info.value)


def test_secrets_not_set_are_reported_when_the_file_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PFO_DEMO_POWENS_CLIENT_ID", "PFO_DEMO_POWENS_CLIENT_SECRET"):
        monkeypatch.setenv(name, "set-for-the-test")
    monkeypatch.delenv("PFO_DEMO_POWENS_WEBHOOK_SECRET", raising=False)
    warnings = read_tenants_file(_write(tmp_path)).warnings()
    assert any(
        f"tenant '{FAMILY}': bindings.primaryOpenBanking.secrets.webhook_secret: "
        "environment variable PFO_DEMO_POWENS_WEBHOOK_SECRET is not set" in w
        for w in warnings
    )
    assert not any("secrets.client_id" in w for w in warnings)
    assert all("set-for-the-test" not in w for w in warnings)


def test_one_bad_tenant_leaves_the_others_loadable(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: _binding(d)["config"].update(environment="staging"))
    tenants_file = read_tenants_file(path)
    assert list(tenants_file.tenants) == [FAMILY]
    assert len(tenants_file.problems) == 1
    assert (
        f"tenant '{SECOND}': bindings.primaryOpenBanking.config.environment"
        in (tenants_file.problems[0])
    )


def test_one_bad_tenant_stops_the_whole_file(tmp_path: Path) -> None:
    # The first tenant is fine; nothing is returned for it either: nothing runs on half a config.
    path = _write(tmp_path, lambda d: _binding(d)["config"].update(environment="staging"))
    with pytest.raises(TenantConfigError, match=SECOND):
        load_tenants(path)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda d: _second(d).update(tenant_id=FAMILY),
            f"tenant '{FAMILY}': tenant_id: duplicated",
        ),
        (lambda d: d.update(tenants=[]), "tenants: must be a non-empty list"),
        (lambda d: d.update(tenant=d.pop("tenants")), "tenant: unknown top-level key"),
        (lambda d: d["tenants"].append("oops"), "tenant #3: must be a mapping"),
        (lambda d: _second(d).update(tenant_id="a b/c"), "tenant_id: must be letters"),
    ],
)
def test_file_level_problems(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    with pytest.raises(TenantConfigError) as info:
        load_tenants(_write(tmp_path, mutate))
    assert expected in str(info.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(TenantConfigError, match="cannot be read"):
        load_tenants(tmp_path / "absent.yaml")


def test_capabilities_default_on_and_can_be_switched_off(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: _second(d).update(capabilities={CAP_BALANCES: False}))
    tenants = load_tenants(path)
    assert all(
        tenants[FAMILY].capability_enabled(c)
        for c in (CAP_ACCOUNTS, CAP_TRANSACTIONS, CAP_BALANCES)
    )
    second = tenants[SECOND]
    assert not second.capability_enabled(CAP_BALANCES)
    assert second.capability_enabled(CAP_ACCOUNTS) and second.capability_enabled(CAP_TRANSACTIONS)
    assert not second.capability_enabled("openbanking.payments.write")


def test_an_unbound_tenant_loads_and_has_no_primary_binding(tmp_path: Path) -> None:
    tenant = load_tenants(_write(tmp_path, lambda d: _second(d).update(bindings={})))[SECOND]
    assert tenant.primary_open_banking is None and check_tenant_against_blueprint(tenant) == []


def test_tenants_are_immutable() -> None:
    tenant = load_tenants()[FAMILY]
    with pytest.raises(ValidationError):
        tenant.config_version = 2  # type: ignore[misc]


def test_secrets_resolve_through_env_vars_and_never_reach_a_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PFO_DEMO_POWENS_CLIENT_SECRET", "value-that-must-stay-hidden")
    tenants = load_tenants()
    secrets = tenants[FAMILY].primary_open_banking.secrets  # type: ignore[union-attr]
    assert resolve_secret(secrets.client_secret) == "value-that-must-stay-hidden"
    assert "value-that-must-stay-hidden" not in repr(tenants) + str(tenants)
    monkeypatch.delenv("PFO_DEMO_POWENS_CLIENT_SECRET")
    assert resolve_secret(secrets.client_secret) is None
    assert resolve_secret(None) is None


def test_the_blueprint_check_reports_every_problem() -> None:
    tenant = load_tenants()[FAMILY]
    binding = tenant.primary_open_banking
    assert binding is not None
    # model_copy skips validation: how a tenant built in code could slip past load_tenants.
    bad = tenant.model_copy(
        update={
            "capabilities": {"openbanking.payments.write": True},
            "bindings": {
                "primaryOpenBanking": binding.model_copy(
                    update={"ownership_mode": "managed", "integration_key": "x"}
                )
            },
        }
    )
    problems = check_tenant_against_blueprint(bad)
    assert len(problems) == 3
    assert any(p.startswith("bindings.primaryOpenBanking.ownership_mode") for p in problems)
    assert any(p.startswith("bindings.primaryOpenBanking.integration_key") for p in problems)
    assert any(p.startswith("capabilities.openbanking.payments.write") for p in problems)


def test_pfo_tenants_check_lists_good_and_broken_tenants(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pfo_pipeline.cli import main

    path = _write(tmp_path, lambda d: _binding(d)["config"].update(environment="staging"))
    result = CliRunner().invoke(main, ["tenants", "check", "--file", str(path)])
    assert result.exit_code == 1
    assert f"ok       {FAMILY}" in result.output
    assert f"tenant '{SECOND}': bindings.primaryOpenBanking.config.environment" in result.output
    good = CliRunner().invoke(main, ["tenants", "check", "--file", str(_write(tmp_path))])
    assert good.exit_code == 0 and f"ok       {SECOND}" in good.output


# --- ${NAME:-default} in config values -----------------------------------------------------------


def test_the_sample_follows_pfo_powens_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.BASE_URL_ENV, "http://127.0.0.1:18999/2.0")
    tenants = load_tenants()
    assert {t.primary_open_banking.config.resolved_base_url() for t in tenants.values()} == {
        "http://127.0.0.1:18999/2.0"
    }
    monkeypatch.setenv(settings.BASE_URL_ENV, "")  # empty, like unset: the default applies
    assert load_tenants()[FAMILY].primary_open_banking.config.resolved_base_url() == (
        "http://127.0.0.1:8765/2.0"
    )


@pytest.mark.parametrize(
    "written, expected",
    [
        ("${PFO_NOT_SET_ANYWHERE}", "environment variable PFO_NOT_SET_ANYWHERE is not set and the "
         "reference has no default"),
        ("${pfo_lower:-x}", "malformed reference ${pfo_lower:-x}"),
        ("http://${PFO_HOST:-127.0.0.1/2.0", "unclosed ${"),
        ("${}", "malformed reference ${}"),
    ],
)  # fmt: skip
def test_a_bad_reference_names_the_tenant_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str, expected: str
) -> None:
    monkeypatch.delenv("PFO_NOT_SET_ANYWHERE", raising=False)
    path = _write(tmp_path, lambda d: _binding(d)["config"].update(base_url=written))
    tenants_file = read_tenants_file(path)
    assert list(tenants_file.tenants) == [FAMILY]  # the other tenant still loads
    [problem] = tenants_file.problems
    assert f"tenant '{SECOND}': bindings.primaryOpenBanking.config.base_url: " in problem
    assert expected in problem


def test_references_are_read_only_in_config_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`secrets` hold variable NAMES: `${…}` there is not expanded (so it fails validation) and a
    variable's value never reaches an error message."""
    monkeypatch.setenv("PFO_SOME_SECRET", "the-secret-value")
    monkeypatch.setenv("PFO_SOME_REGION", "eu-west-3")

    def mutate(document: dict[str, Any]) -> None:
        _binding(document)["secrets"]["client_id"] = "${PFO_SOME_SECRET}"
        document["tenants"][0]["bindings"]["primaryOpenBanking"]["config"]["region"] = (
            "${PFO_SOME_REGION}"
        )

    tenants_file = read_tenants_file(_write(tmp_path, mutate))
    assert tenants_file.tenants[FAMILY].primary_open_banking.config.region == "eu-west-3"
    [problem] = tenants_file.problems
    assert "secrets.client_id: must be the NAME of an environment variable" in problem
    assert "the-secret-value" not in problem


def test_a_yaml_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n  - tenant_id: a\n    bindings: {primaryOpenBanking: [\n")
    with pytest.raises(TenantConfigError, match=r"not valid YAML at line 4, column 1"):
        read_tenants_file(path)
