"""Dagster resources, all in one place: Powens (one client per tenant connection), the DuckLake
ledger, dbt, and the webhook inbox the sensor reads. `pfo_pipeline.definitions` binds them.

Secrets are never stored in config: the tenants file names environment variables and they are read
through `dagster.EnvVar` at the moment a client is built (`operations.powens_clients`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pfo_pipeline import settings
from pfo_pipeline.defs.failures import fail_fast_if_permanent
from pfo_pipeline.lake import LakeLocation, open_lake
from pfo_pipeline.powens.options import ClientOptions
from pfo_pipeline.tenancy.config import TenantConfig, TenantConfigError, read_tenants_file
from pfo_pipeline.webhooks.inbox import Inbox, inbox_path

if TYPE_CHECKING:
    from pfo_pipeline.defs.analytics.project import LocalDbtCliResource

# The lake's resource key, and the concurrency pool of every step that writes the lake.
LAKE = "lake"


class PowensResource(dg.ConfigurableResource):
    """Builds the Powens client of a tenant's `primaryOpenBanking` connection. The tenants come
    from `PFO_TENANTS_FILE` (`settings.tenants_file`, as the partitions do); how patient the
    client is defaults to `ClientOptions`."""

    timeout_s: float = ClientOptions.timeout_s
    max_attempts: int = ClientOptions.max_attempts
    backoff_initial_s: float = ClientOptions.backoff_initial_s

    def tenants(self) -> dict[str, TenantConfig]:
        """The tenants that validate (one broken tenant does not stop the others' runs)."""
        return read_tenants_file().tenants

    def tenant(self, tenant_id: str) -> TenantConfig:
        try:
            tenants_file = read_tenants_file()
        except TenantConfigError as exc:  # a file no retry can fix
            raise dg.Failure(str(exc), allow_retries=False) from None
        if tenant_id in tenants_file.tenants:
            return tenants_file.tenants[tenant_id]
        named = [p for p in tenants_file.problems if f"tenant {tenant_id!r}:" in p]
        raise dg.Failure(
            named[0] if named else f"tenant {tenant_id!r} is not in the tenants file",
            allow_retries=False,
        )

    def client_options(self) -> ClientOptions:
        return ClientOptions(
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s,
        )


class LakeResource(DuckDBResource):
    """dagster-duckdb's resource, on the DuckLake (`pfo_pipeline.lake`, the one door to it).

    `catalog` / `data_path` default to `PFO_LAKE_CATALOG` / `PFO_LAKE_DATA_PATH`. A connection is
    a cursor of the process's lake database (a writer's first attach migrates the lake): nothing
    holds a lock between steps, and any number of runs, processes and analysts use the lake at
    once. An error no retry can fix (a lake that cannot be opened, a missing data file, a full
    disk...) fails the step at once, its first line naming the file and what to do.
    """

    database: str = ":memory:"
    catalog: str | None = None
    data_path: str | None = None

    def location(self) -> LakeLocation:
        default = LakeLocation.from_env()
        return LakeLocation(self.catalog or default.catalog, self.data_path or default.data_path)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:  # type: ignore[override]
        with fail_fast_if_permanent("the lake"), open_lake(self.location()) as conn:
            yield conn


def lake_resource(where: Path | str | LakeLocation | None = None) -> LakeResource:
    """The lake resource: a folder holding a self-contained lake (tests), a location, or the
    environment's (`PFO_LAKE_CATALOG`, `PFO_LAKE_DATA_PATH`)."""
    if where is None:
        return LakeResource()
    location = where if isinstance(where, LakeLocation) else LakeLocation.in_folder(where)
    return LakeResource(catalog=location.catalog, data_path=location.data_path)


class WebhookSensorConfig(dg.ConfigurableResource):
    """Where the receiver's inbox lives (`PFO_WEBHOOK_INBOX`, default data/webhook_inbox.sqlite3)."""

    inbox_path: str | None = None

    def inbox(self) -> Inbox:
        return Inbox(Path(self.inbox_path) if self.inbox_path else inbox_path())


def dbt_resource() -> LocalDbtCliResource:
    """dbt on the project in `dbt_project/`, run by the dbt `dbt_executable` finds (its own
    environment). dagster-dbt is imported here: a process that only syncs the ledger with these
    resources, such as a sensor's or a script's, spares its import."""
    from pfo_pipeline.defs.analytics.project import (
        LocalDbtCliResource,
        dbt_executable,
        dbt_project,
    )

    return LocalDbtCliResource(
        project_dir=dbt_project(),
        profiles_dir=str(settings.DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )
