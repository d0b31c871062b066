"""Dagster resources: Powens (one client per tenant connection) and the DuckDB ledger.

Secrets are never stored in config: the tenants file names environment variables and they are read
through `dagster.EnvVar` at the moment a client is built.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pfo_pipeline import settings
from pfo_pipeline.ledger.schema import CONNECTION_CONFIG, migrate
from pfo_pipeline.powens.client import PowensClient
from pfo_pipeline.tenancy.config import TenantConfig, load_tenants, resolve_secret

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
            raise dg.Failure(f"tenant {tenant.tenant_id!r}: primaryOpenBanking slot is not bound")
        return PowensClient(
            binding.config.resolved_base_url(),
            user_id=binding.powens_user_id,
            api_key=resolve_secret(binding.secrets.api_key),
            client_id=resolve_secret(binding.secrets.client_id),
            client_secret=resolve_secret(binding.secrets.client_secret),
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s,
        )


RESERVED_STEMS = frozenset({"ledger", "analytics", "staging", "knowledge", "telemetry", "main"})


def ledger_resource(path: Path | None = None) -> DuckDBResource:
    """The dagster-duckdb resource on `PFO_DUCKDB_PATH` (default `data/pfo.duckdb`)."""
    path = Path(path or settings.duckdb_path())
    if path.stem in RESERVED_STEMS:
        # DuckDB names the catalog after the file: `ledger.duckdb` would make `ledger.x` ambiguous.
        raise ValueError(
            f"{settings.DUCKDB_PATH_ENV}: the file name {path.name!r} clashes with a schema name; "
            f"use another name, e.g. pfo.duckdb"
        )
    return DuckDBResource(database=str(path), connection_config=CONNECTION_CONFIG)


@contextmanager
def ledger_connection(duckdb_resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the ledger (creating its folder), migrated to the latest schema."""
    Path(duckdb_resource.database).parent.mkdir(parents=True, exist_ok=True)
    with duckdb_resource.get_connection() as conn:
        # dagster-duckdb closes only on success; a failed step must not leave the file open
        # (the single writer would stay held, and the traceback keeps the connection alive).
        try:
            migrate(conn)
            yield conn
        finally:
            conn.close()
