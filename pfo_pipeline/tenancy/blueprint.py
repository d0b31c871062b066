"""The blueprint of the original design (`pocket-family-office.app@1.0.0`), reduced to what this
pipeline enforces: the `primaryOpenBanking` slot, BYOK only, three read capabilities on by default.

A tenant is checked against it twice: when the tenants file loads (a contradiction is a config error)
and by the guardrail before every sync (a tenant built in code never skips the check).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pfo_pipeline.tenancy.config import TenantConfig

CAP_ACCOUNTS = "openbanking.accounts.read"
CAP_TRANSACTIONS = "openbanking.transactions.read"
CAP_BALANCES = "openbanking.balances.read"
OPEN_BANKING_CAPABILITIES = (CAP_ACCOUNTS, CAP_TRANSACTIONS, CAP_BALANCES)

SLOT_ID = "primaryOpenBanking"
INTEGRATION_KEY = "openbanking.powens"
OWNERSHIP_BYOK = "byok"
APP_ID = "pocket-family-office"


@dataclass(frozen=True)
class Slot:
    """One integration slot a tenant binds a connection to."""

    slot_id: str
    category: str
    required: bool
    ownership_modes: frozenset[str]
    integration_keys: frozenset[str]
    required_capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Blueprint:
    """An app version: its slots and the capabilities a tenant may switch (all on by default)."""

    app_id: str
    name: str
    version: str
    slots: Mapping[str, Slot]
    default_capabilities: Mapping[str, bool]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


POCKET_FAMILY_OFFICE = Blueprint(
    app_id=APP_ID,
    name="pocket-family-office.app",
    version="1.0.0",
    slots=MappingProxyType(
        {
            SLOT_ID: Slot(
                slot_id=SLOT_ID,
                category="open-banking",
                required=True,
                ownership_modes=frozenset({OWNERSHIP_BYOK}),
                integration_keys=frozenset({INTEGRATION_KEY}),
                required_capabilities=OPEN_BANKING_CAPABILITIES,
            )
        }
    ),
    default_capabilities=MappingProxyType(dict.fromkeys(OPEN_BANKING_CAPABILITIES, True)),
)
BLUEPRINTS: Mapping[str, Blueprint] = MappingProxyType(
    {POCKET_FAMILY_OFFICE.ref: POCKET_FAMILY_OFFICE}
)


def check_tenant_against_blueprint(tenant: TenantConfig) -> list[str]:
    """What in a tenant contradicts its blueprint, as `key.path: problem` strings (empty = fine).

    An unbound `primaryOpenBanking` is not a problem here: the guardrail blocks it at sync time, so a
    tenant can be listed before its bank is connected.
    """
    known = BLUEPRINTS.get(tenant.blueprint)
    if known is None:
        return [
            f"blueprint: unknown blueprint {tenant.blueprint!r} (known: {', '.join(BLUEPRINTS)})"
        ]
    problems: list[str] = []
    if tenant.app_id != known.app_id:
        problems.append(
            f"app_id: blueprint {known.ref} belongs to app {known.app_id!r}, not {tenant.app_id!r}"
        )
    for name in tenant.capabilities:
        if name not in known.default_capabilities:
            problems.append(
                f"capabilities.{name}: not a capability of {known.ref} "
                f"(known: {', '.join(known.default_capabilities)})"
            )
    for slot_id, binding in tenant.bindings.items():
        slot = known.slots.get(slot_id)
        if slot is None:
            problems.append(f"bindings.{slot_id}: no such slot in {known.ref}")
            continue
        if binding.ownership_mode not in slot.ownership_modes:
            problems.append(
                f"bindings.{slot_id}.ownership_mode: {binding.ownership_mode!r} is not allowed "
                f"(allowed: {', '.join(sorted(slot.ownership_modes))})"
            )
        if binding.integration_key not in slot.integration_keys:
            problems.append(
                f"bindings.{slot_id}.integration_key: {binding.integration_key!r} cannot fill "
                f"{slot_id} (allowed: {', '.join(sorted(slot.integration_keys))})"
            )
    return problems
