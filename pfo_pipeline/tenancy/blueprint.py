"""The blueprint of the original design (`pocket-family-office.app@1.0.0`), reduced to what this
pipeline enforces: the `primaryOpenBanking` slot, BYOK only, three read capabilities on by default."""

from __future__ import annotations

from dataclasses import dataclass

CAP_ACCOUNTS = "openbanking.accounts.read"
CAP_TRANSACTIONS = "openbanking.transactions.read"
CAP_BALANCES = "openbanking.balances.read"
SLOT_ID = "primaryOpenBanking"
INTEGRATION_KEY = "openbanking.powens"


@dataclass(frozen=True)
class Slot:
    slot_id: str
    category: str
    required: bool
    ownership_modes: frozenset[str]
    integration_keys: frozenset[str]
    required_capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Blueprint:
    app_id: str
    name: str
    version: str
    slots: dict[str, Slot]
    default_capabilities: dict[str, bool]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


POCKET_FAMILY_OFFICE = Blueprint(
    app_id="pocket-family-office",
    name="pocket-family-office.app",
    version="1.0.0",
    slots={
        SLOT_ID: Slot(
            slot_id=SLOT_ID,
            category="open-banking",
            required=True,
            ownership_modes=frozenset({"byok"}),
            integration_keys=frozenset({INTEGRATION_KEY}),
            required_capabilities=(CAP_ACCOUNTS, CAP_TRANSACTIONS, CAP_BALANCES),
        )
    },
    default_capabilities={CAP_ACCOUNTS: True, CAP_TRANSACTIONS: True, CAP_BALANCES: True},
)
BLUEPRINTS = {POCKET_FAMILY_OFFICE.ref: POCKET_FAMILY_OFFICE}


def blueprint_problems(
    *, blueprint: str, app_id: str, capabilities: dict[str, bool], bindings: dict[str, object]
) -> list[str]:
    """What in a tenant contradicts its blueprint, as `key: problem` strings."""
    known = BLUEPRINTS.get(blueprint)
    if known is None:
        return [f"blueprint: unknown blueprint {blueprint!r} (known: {', '.join(BLUEPRINTS)})"]
    problems = []
    if app_id != known.app_id:
        problems.append(f"app_id: blueprint {blueprint} belongs to app {known.app_id!r}")
    for name in capabilities:
        if name not in known.default_capabilities:
            problems.append(f"capabilities.{name}: not a capability of {blueprint}")
    for slot_id, binding in bindings.items():
        slot = known.slots.get(slot_id)
        if slot is None:
            problems.append(f"bindings.{slot_id}: no such slot in {blueprint}")
            continue
        mode = getattr(binding, "ownership_mode", None)
        if mode not in slot.ownership_modes:
            problems.append(
                f"bindings.{slot_id}.ownership_mode: {mode!r} not allowed "
                f"(allowed: {', '.join(sorted(slot.ownership_modes))})"
            )
        key = getattr(binding, "integration_key", None)
        if key not in slot.integration_keys:
            problems.append(f"bindings.{slot_id}.integration_key: {key!r} cannot fill {slot_id}")
    return problems
