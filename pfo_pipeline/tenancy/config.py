"""The tenants file (docs/spec.md §3): validated whole on load, one clear error naming the tenant and key.

Secrets appear only as the *names* of environment variables; their values are read from the
environment when a client is built and never stored, logged or shown in a repr. Error messages
never echo what was written under `secrets` (a pasted secret must not end up in a log either).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pfo_pipeline import settings
from pfo_pipeline.tenancy.blueprint import (
    BLUEPRINTS,
    INTEGRATION_KEY,
    OWNERSHIP_BYOK,
    SLOT_ID,
    check_tenant_against_blueprint,
)
from pfo_pipeline.tenancy.interpolation import InterpolationError, interpolate_bindings

logger = logging.getLogger("pfo_pipeline.tenancy")
ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Names like PFO_FAMILY_CLIENT_SECRET: words joined by underscores. A long run of capitals and
# digits without one (PZ7Q2K9XW4M1R8TB) is far more likely a pasted secret than a variable name.
_LONGEST_PLAUSIBLE_WORD = 15
_MAX_DIGIT_SHARE = 1 / 3
DOMAIN = re.compile(r"^[a-z0-9-]+$")
# Tenant ids name Dagster partitions, run keys and chart files: keep them to a safe alphabet.
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_REPORTED = 5


class TenantConfigError(ValueError):
    """The tenants file is unusable; the message names the file, the tenant and the key path."""


class _Strict(BaseModel):
    """No coercion ("1" is not 1, "no" is not False), no unknown keys (typos), immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PowensConnectionConfig(_Strict):
    """The non-secret config of a Powens connection."""

    environment: Literal["sandbox", "production"]
    domain: str | None = None
    base_url: str | None = None
    region: str | None = None
    # Schedules tick in whole minutes, so a sub-minute interval could never be honoured.
    polling_interval_ms: int = Field(default=300_000, ge=60_000)

    @field_validator("domain")
    @classmethod
    def _domain_shape(cls, value: str | None) -> str | None:
        if value is not None and not DOMAIN.match(value):
            raise ValueError("must be lowercase letters, digits and hyphens (e.g. pfo-sandbox)")
        return value

    @field_validator("base_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8765/2.0")
        return value

    @model_validator(mode="after")
    def _has_an_address(self) -> PowensConnectionConfig:
        if not self.base_url and not self.domain:
            raise ValueError("one of domain or base_url is required")
        return self

    def resolved_base_url(self) -> str:
        """`base_url` when set (emulator, tests), else the client's own Powens domain."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"https://{self.domain}.biapi.pro/2.0"


class SecretRefs(_Strict):
    """Names of the environment variables holding the secrets, never the secrets themselves."""

    client_id: str
    client_secret: str
    api_key: str | None = None
    webhook_secret: str | None = None

    @field_validator("client_id", "client_secret", "api_key", "webhook_secret")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        # Never echo the value: it may be a secret pasted where its env var name belongs.
        if value is not None and not ENV_VAR_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (A-Z, 0-9, _), not a secret value"
            )
        if value is not None and not plausible_env_var_name(value):
            raise ValueError(
                "looks like a pasted secret, not the NAME of an environment variable "
                "(use a name such as PFO_FAMILY_CLIENT_SECRET and put the secret in it)"
            )
        return value

    def unset(self) -> list[str]:
        """The keys whose environment variable is not set here (the names, never values)."""
        return [
            key
            for key in type(self).model_fields
            if getattr(self, key) is not None and resolve_secret(getattr(self, key)) is None
        ]


def plausible_env_var_name(name: str) -> bool:
    """Underscore-separated words of modest length, mostly letters (see the constants above)."""
    longest_word = max((len(word) for word in name.split("_")), default=0)
    digits = sum(ch.isdigit() for ch in name)
    return longest_word <= _LONGEST_PLAUSIBLE_WORD and digits <= _MAX_DIGIT_SHARE * len(name)


class OpenBankingBinding(_Strict):
    """The tenant's `primaryOpenBanking` slot bound to one Powens connection."""

    connection_id: str = Field(min_length=1)
    integration_key: str = INTEGRATION_KEY
    ownership_mode: str = OWNERSHIP_BYOK
    powens_user_id: int = Field(gt=0)
    config: PowensConnectionConfig
    secrets: SecretRefs

    @property
    def slot_id(self) -> str:
        return SLOT_ID


class TenantConfig(_Strict):
    """One tenant: its app, blueprint, capability switches and slot bindings."""

    tenant_id: str
    app_id: str = Field(min_length=1)
    blueprint: str = Field(min_length=1)
    config_version: int = Field(ge=1)
    capabilities: dict[str, bool] = Field(default_factory=dict)
    bindings: dict[str, OpenBankingBinding] = Field(default_factory=dict)

    @field_validator("tenant_id")
    @classmethod
    def _tenant_id_shape(cls, value: str) -> str:
        if not TENANT_ID.match(value):
            raise ValueError(
                "must be letters, digits, '.', '_' or '-' (it names partitions and files)"
            )
        return value

    @field_validator("bindings", mode="before")
    @classmethod
    def _known_slots(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = [str(slot) for slot in value if slot != SLOT_ID]
            if unknown:
                raise ValueError(f"unknown slot {unknown[0]!r} (only {SLOT_ID} is known)")
        return value

    @property
    def primary_open_banking(self) -> OpenBankingBinding | None:
        return self.bindings.get(SLOT_ID)

    def capability_enabled(self, capability: str) -> bool:
        """The blueprint's default (on) unless this tenant switched it off; unknown means off."""
        blueprint = BLUEPRINTS.get(self.blueprint)
        if blueprint is None or capability not in blueprint.default_capabilities:
            return False
        return self.capabilities.get(capability, blueprint.default_capabilities[capability])


# Which model sits at a location, so an unknown key can be answered with the keys that do exist.
def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    shapes: dict[tuple[Any, ...], type[BaseModel]] = {
        (): TenantConfig,
        ("bindings", SLOT_ID): OpenBankingBinding,
        ("bindings", SLOT_ID, "config"): PowensConnectionConfig,
        ("bindings", SLOT_ID, "secrets"): SecretRefs,
    }
    return shapes.get(tuple(loc))


def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as `key.path: problem`, echoing the input only where it is harmless."""
    loc = tuple(error["loc"])
    path = ".".join(str(part) for part in loc) or "(tenant)"
    kind, given = error["type"], error.get("input")
    secret_area = "secrets" in loc
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "extra_forbidden" and secret_area:
        # The unknown key itself may be a secret pasted as a key: name only its place.
        path = ".".join(str(part) for part in loc[:-1]) + ".<unknown key>"
        allowed = ", ".join(SecretRefs.model_fields)
        return f"{path}: unknown key (allowed: {allowed}; values are env var names)"
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        hint = ""
        if model is not None:
            allowed = list(model.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = (
                f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
            )
        return f"{path}: unknown key{hint}"
    message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    if kind == "literal_error" and not secret_area:
        return f"{path}: {message}, got {str(given)[:40]!r}"
    if kind.endswith("_type") or kind in {"model_type", "dict_type"}:
        return f"{path}: {message}, got {type(given).__name__}"
    if kind.startswith(("greater_than", "less_than")) and not secret_area:
        return f"{path}: {message}, got {given!r}"
    return f"{path}: {message}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the YAML breaks, without quoting the line (it might hold a pasted secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    if mark is None:
        return f"not valid YAML ({problem})"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1} ({problem})"


def _label(raw: Any, index: int) -> str:
    tenant_id = raw.get("tenant_id") if isinstance(raw, dict) else None
    if isinstance(tenant_id, str) and tenant_id:
        return f"tenant {tenant_id[:80]!r}"
    return f"tenant #{index + 1}"


def _summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:_MAX_REPORTED])
    more = len(problems) - _MAX_REPORTED
    return f"{shown}; and {more} more problem(s)" if more > 0 else shown


@dataclass(frozen=True)
class TenantsFile:
    """A tenants file read tenant by tenant: one broken tenant must not hide the others."""

    path: Path
    tenants: dict[str, TenantConfig]
    problems: list[str]  # one line per broken tenant: file, tenant and key, never a secret

    def warnings(self) -> list[str]:
        """Secrets whose environment variable is not set where the file was loaded: found now,
        not at the first sync (runs elsewhere, e.g. in a pod, may still have them)."""
        return [
            f"tenants file {self.path}: tenant {tenant.tenant_id!r}: bindings.{SLOT_ID}.secrets."
            f"{key}: environment variable {getattr(binding.secrets, key)} is not set"
            for tenant in self.tenants.values()
            if (binding := tenant.primary_open_banking) is not None
            for key in binding.secrets.unset()
        ]


def read_tenants_file(path: Path | None = None) -> TenantsFile:
    """Every valid tenant, in file order, plus one problem line per invalid tenant. A file that
    cannot be read or parsed at all raises TenantConfigError (there is no tenant to keep)."""
    path = Path(path) if path is not None else settings.tenants_file()
    where = f"tenants file {path}"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TenantConfigError(f"{where}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TenantConfigError(f"{where}: {_yaml_problem(exc)}") from None
    if not isinstance(document, dict):
        raise TenantConfigError(f"{where}: tenants: the file must be a mapping with a tenants list")
    extra = sorted(str(key) for key in document if key != "tenants")
    if extra:
        raise TenantConfigError(f"{where}: {extra[0]}: unknown top-level key (only tenants)")
    raw_tenants = document.get("tenants")
    if not isinstance(raw_tenants, list) or not raw_tenants:
        raise TenantConfigError(f"{where}: tenants: must be a non-empty list of tenants")

    tenants: dict[str, TenantConfig] = {}
    problems: list[str] = []
    for index, raw in enumerate(raw_tenants):
        label = _label(raw, index)
        if not isinstance(raw, dict):
            problems.append(f"{where}: {label}: must be a mapping of tenant keys")
            continue
        try:
            raw = interpolate_bindings(raw)
        except InterpolationError as exc:
            problems.append(f"{where}: {label}: {exc}")
            continue
        try:
            tenant = TenantConfig.model_validate(raw)
        except ValidationError as exc:
            details = [_describe(error) for error in exc.errors()]
            problems.append(f"{where}: {label}: {_summary(details)}")
            continue
        details = check_tenant_against_blueprint(tenant)
        if details:
            problems.append(f"{where}: {label}: {_summary(details)}")
        elif tenant.tenant_id in tenants:
            problems.append(f"{where}: {label}: tenant_id: duplicated (tenant ids are unique)")
        else:
            tenants[tenant.tenant_id] = tenant
    return TenantsFile(path=path, tenants=tenants, problems=problems)


def load_tenants(path: Path | None = None) -> dict[str, TenantConfig]:
    """Every tenant of the file, in file order; any problem anywhere raises one TenantConfigError
    (for commands that act on the whole file; the code location uses `read_tenants_file`)."""
    tenants_file = read_tenants_file(path)
    if tenants_file.problems:
        raise TenantConfigError(tenants_file.problems[0])
    return tenants_file.tenants


def usable_tenants(path: Path | None = None) -> dict[str, TenantConfig]:
    """The tenants that validate, for the code location: a broken tenant is left out, and a file
    that cannot be read or parsed at all (a YAML syntax error) leaves no tenant, instead of
    taking every job down with it; the `tenants_file_problems` sensor reports either."""
    try:
        return read_tenants_file(path).tenants
    except TenantConfigError as exc:
        logger.warning("%s: no tenant loads until it is fixed", exc)
        return {}


def resolve_secret(env_var_name: str | None) -> str | None:
    """A secret's value from the environment; None when not configured, not set or empty.

    Read at the moment a client is built, so a rotated secret is picked up by the next run.
    """
    if not env_var_name:
        return None
    return os.environ.get(env_var_name) or None
