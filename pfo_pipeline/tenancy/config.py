"""The tenants file (SPEC §3): validated whole on load, one clear error naming the tenant and key.

Secrets appear only as the *names* of environment variables; their values are read through
`dagster.EnvVar` when a client is built and never stored, logged or shown in a repr.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pfo_pipeline import settings
from pfo_pipeline.tenancy.blueprint import (
    BLUEPRINTS,
    INTEGRATION_KEY,
    SLOT_ID,
    blueprint_problems,
)

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_DOMAIN = re.compile(r"^[a-z0-9-]+$")


class TenantConfigError(ValueError):
    """The tenants file is unusable; the message names the file, the tenant and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PowensConnectionConfig(_Strict):
    environment: Literal["sandbox", "production"]
    domain: str | None = None
    base_url: str | None = None
    region: str | None = None
    polling_interval_ms: int = Field(default=300_000, ge=60_000)

    @field_validator("domain")
    @classmethod
    def _domain_shape(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.match(value):
            raise ValueError("must be lowercase letters, digits and hyphens")
        return value

    @field_validator("base_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        return value

    def resolved_base_url(self) -> str:
        """`base_url` when set (emulator, tests), else the client's Powens domain."""
        if self.base_url:
            return self.base_url.rstrip("/")
        if not self.domain:
            raise TenantConfigError("config.domain: required when base_url is not set")
        return f"https://{self.domain}.biapi.pro/2.0"


class SecretRefs(_Strict):
    """Names of environment variables holding the secrets, never the secrets."""

    client_id: str
    client_secret: str
    api_key: str | None = None
    webhook_secret: str | None = None

    @field_validator("client_id", "client_secret", "api_key", "webhook_secret")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            # Never echo the value: it may be a secret pasted where its env var name belongs.
            raise ValueError(
                "must be the NAME of an environment variable (A-Z, 0-9, _), not a secret value"
            )
        return value


class OpenBankingBinding(_Strict):
    connection_id: str = Field(min_length=1)
    integration_key: str = INTEGRATION_KEY
    ownership_mode: str = "byok"
    powens_user_id: int = Field(gt=0)
    config: PowensConnectionConfig
    secrets: SecretRefs

    @property
    def slot_id(self) -> str:
        return SLOT_ID


class TenantConfig(_Strict):
    tenant_id: str = Field(min_length=1)
    app_id: str = Field(min_length=1)
    blueprint: str = Field(min_length=1)
    config_version: int = Field(ge=1)
    capabilities: dict[str, bool] = Field(default_factory=dict)
    bindings: dict[str, OpenBankingBinding] = Field(default_factory=dict)

    @property
    def primary_open_banking(self) -> OpenBankingBinding | None:
        return self.bindings.get(SLOT_ID)

    def capability_enabled(self, capability: str) -> bool:
        """The blueprint's default (on) unless this tenant switched it off."""
        defaults = BLUEPRINTS[self.blueprint].default_capabilities
        return self.capabilities.get(capability, defaults.get(capability, False))


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_tenants(path: Path | None = None) -> dict[str, TenantConfig]:
    """Every tenant of the file, in file order; any problem anywhere raises one clear error."""
    path = path or settings.tenants_file()
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TenantConfigError(f"tenants file {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TenantConfigError(f"tenants file {path}: not valid YAML ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("tenants"), list):
        raise TenantConfigError(f"tenants file {path}: tenants: must be a list of tenants")
    tenants: dict[str, TenantConfig] = {}
    for index, raw in enumerate(document["tenants"]):
        label = (
            f"tenant {raw.get('tenant_id')!r}"
            if isinstance(raw, dict) and raw.get("tenant_id")
            else f"tenant #{index + 1}"
        )
        try:
            tenant = TenantConfig.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise TenantConfigError(
                f"tenants file {path}: {label}: {_location(first['loc'])}: {first['msg']}"
            ) from None
        problems = blueprint_problems(
            blueprint=tenant.blueprint,
            app_id=tenant.app_id,
            capabilities=tenant.capabilities,
            bindings=tenant.bindings,
        )
        if problems:
            raise TenantConfigError(f"tenants file {path}: {label}: {problems[0]}")
        if tenant.tenant_id in tenants:
            raise TenantConfigError(f"tenants file {path}: {label}: tenant_id: duplicated")
        tenants[tenant.tenant_id] = tenant
    return tenants


def resolve_secret(env_var_name: str | None) -> str | None:
    """A secret's value through Dagster's EnvVar; None when not configured or not set."""
    if not env_var_name:
        return None
    return dg.EnvVar(env_var_name).get_value() or None
