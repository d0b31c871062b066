"""Dagster resources: Powens (one client per tenant connection) and the DuckLake ledger.

Secrets are never stored in config: the tenants file names environment variables and they are read
through `dagster.EnvVar` at the moment a client is built.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pfo_pipeline.ledger.lake import LakeLocation, open_lake
from pfo_pipeline.ledger.schema import migrate
from pfo_pipeline.powens.client import PowensClient
from pfo_pipeline.tenancy.config import (
    TenantConfig,
    TenantConfigError,
    load_tenants,
    resolve_secret,
)

LEDGER_POOL = "duckdb_ledger"


class PowensResource(dg.ConfigurableResource):
    """Builds the Powens client of a tenant's `primaryOpenBanking` connection."""

    tenants_file: str | None = None
    timeout_s: float = 15.0
    max_attempts: int = 5
    backoff_initial_s: float = 0.2

    def tenants(self) -> dict[str, TenantConfig]:
        return load_tenants(Path(self.tenants_file) if self.tenants_file else None)

    def tenant(self, tenant_id: str) -> TenantConfig:
        tenants = self.tenants()
        if tenant_id not in tenants:
            raise dg.Failure(f"tenant {tenant_id!r} is not in the tenants file")
        return tenants[tenant_id]

    def client_for(self, tenant: TenantConfig) -> PowensClient:
        binding = tenant.primary_open_banking
        if binding is None:
            raise dg.Failure(
                f"tenant {tenant.tenant_id!r}: primaryOpenBanking slot is not bound",
                allow_retries=False,
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
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s,
        )


class LakeResource(DuckDBResource):
    """dagster-duckdb's resource, on the DuckLake ledger (`pfo_pipeline.ledger.lake`).

    `catalog` / `data_path` default to `PFO_LAKE_CATALOG` / `PFO_LAKE_DATA_PATH`. Every connection
    is a fresh in-memory DuckDB with the lake attached: nothing holds a lock between steps, and any
    number of runs, processes and analysts use the lake at once.
    """

    database: str = ":memory:"
    catalog: str | None = None
    data_path: str | None = None

    def location(self) -> LakeLocation:
        default = LakeLocation.from_env()
        return LakeLocation(self.catalog or default.catalog, self.data_path or default.data_path)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:  # type: ignore[override]
        with open_lake(self.location()) as conn:
            migrate(conn)
            yield conn


def ledger_resource(where: Path | str | LakeLocation | None = None) -> LakeResource:
    """The lake resource: a folder holding a self-contained lake (tests), a location, or the
    environment's (`PFO_LAKE_CATALOG`, `PFO_LAKE_DATA_PATH`)."""
    if where is None:
        return LakeResource()
    location = where if isinstance(where, LakeLocation) else LakeLocation.in_folder(where)
    return LakeResource(catalog=location.catalog, data_path=location.data_path)


@contextmanager
def ledger_connection(resource: LakeResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A lake connection, migrated to the latest schema, closed whatever happens."""
    with resource.get_connection() as conn:
        yield conn
