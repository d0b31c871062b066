"""The Powens client of a tenant's `primaryOpenBanking` connection, built from the tenants file.

One function that the Dagster resource and the command line (`pfo connect`) both call, so neither
reaches into the other. Secrets are read through `dagster.EnvVar` only here, when a client is built.
"""

from __future__ import annotations

from pfo_pipeline.powens.client import PowensClient
from pfo_pipeline.powens.options import ClientOptions
from pfo_pipeline.tenancy.config import TenantConfig, TenantConfigError, resolve_secret


def powens_client_for(tenant: TenantConfig, options: ClientOptions | None = None) -> PowensClient:
    """The client of the tenant's bound connection; `TenantConfigError` (permanent: a retry cannot
    fix it) when the slot is unbound or the credentials it names are not set."""
    binding = tenant.primary_open_banking
    if binding is None:
        raise TenantConfigError(
            f"tenant {tenant.tenant_id!r}: primaryOpenBanking slot is not bound"
        )
    api_key = resolve_secret(binding.secrets.api_key)
    if not api_key:
        # Without a permanent user token the client renews one: both credentials must be set.
        missing = [
            name
            for name in (binding.secrets.client_id, binding.secrets.client_secret)
            if not name or not resolve_secret(name)
        ]
        if missing:
            raise TenantConfigError(
                f"tenant {tenant.tenant_id!r}: no Powens credentials: set the environment "
                f"variable(s) {', '.join(repr(m) for m in missing if m) or 'named under secrets'}"
                " (client_id / client_secret, or an api_key)"
            )
    return PowensClient(
        binding.config.resolved_base_url(),
        user_id=binding.powens_user_id,
        api_key=api_key,
        client_id=resolve_secret(binding.secrets.client_id),
        client_secret=resolve_secret(binding.secrets.client_secret),
        options=options,
    )
