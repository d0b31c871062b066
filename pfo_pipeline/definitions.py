"""The code location `workspace.yaml` loads: every asset, check, job, schedule and sensor."""

import warnings

import dagster as dg

from pfo_pipeline.defs.analytics.assets import dbt_resource, pfo_dbt_models
from pfo_pipeline.defs.analytics.automation import build_analytics_marts
from pfo_pipeline.defs.knowledge.assets import financial_overview, knowledge_retention_sweep
from pfo_pipeline.defs.knowledge.automation import (
    daily_overview_schedule,
    generate_openbanking_overview,
    knowledge_retention_job,
    retention_schedule,
)
from pfo_pipeline.defs.knowledge.checks import knowledge_space_has_no_pii
from pfo_pipeline.defs.lake.assets import lake_maintenance
from pfo_pipeline.defs.lake.automation import lake_maintenance_job, lake_maintenance_schedule
from pfo_pipeline.defs.ledger.assets import (
    account_balances,
    bank_accounts,
    bank_transactions,
    powens_connection_health,
)
from pfo_pipeline.defs.ledger.automation import SYNC_JOBS, SYNC_SCHEDULES
from pfo_pipeline.defs.ledger.checks import LEDGER_CHECKS
from pfo_pipeline.defs.resources import PowensResource, ledger_resource
from pfo_pipeline.defs.webhooks.automation import (
    WebhookSensorConfig,
    powens_webhook_sensor,
    record_webhook_telemetry,
)

LEDGER_ASSETS = [powens_connection_health, bank_accounts, bank_transactions, account_balances]
ALL_ASSETS = [
    *LEDGER_ASSETS,
    pfo_dbt_models,
    financial_overview,
    knowledge_retention_sweep,
    lake_maintenance,
]
ALL_CHECKS = [*LEDGER_CHECKS, knowledge_space_has_no_pii]
# What `dagster.materialize` needs to run any selection with its checks (tests, the demo).
MATERIALIZABLE = [*ALL_ASSETS, *ALL_CHECKS]


def build_resources(ledger=None, tenants_file=None) -> dict[str, object]:
    return {
        "powens": PowensResource(tenants_file=str(tenants_file) if tenants_file else None),
        "duckdb": ledger_resource(ledger),
        "dbt": dbt_resource(),
        "webhooks": WebhookSensorConfig(),
    }


# Dagster re-creates a sensor with its own `owners=None` when it binds resources to the sensor's
# jobs and warns that the (unused) parameter is beta, once per process: every run step printed it.
warnings.filterwarnings(
    "ignore",
    message=r"Parameter `owners` of initializer `SensorDefinition.__init__`",
    category=dg.BetaWarning,
)

# One process per run: a multiprocess step re-imports the code location (~7 s here) for work that
# takes milliseconds, and a run's ledger steps are sequential anyway. Pools still apply.
defs = dg.Definitions(
    executor=dg.in_process_executor,
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[
        *SYNC_JOBS,
        build_analytics_marts,
        generate_openbanking_overview,
        knowledge_retention_job,
        lake_maintenance_job,
        record_webhook_telemetry,
    ],
    schedules=[
        *SYNC_SCHEDULES,
        daily_overview_schedule,
        retention_schedule,
        lake_maintenance_schedule,
    ],
    sensors=[powens_webhook_sensor],
    resources=build_resources(),
)
