"""Knowledge automation: the overview and retention jobs and their daily schedules.

Assets are named by key, not imported: an imported asset would be a second definition here.
"""

import dagster as dg

generate_openbanking_overview = dg.define_asset_job(
    name="generate_openbanking_overview",
    description="Aggregate balances, cashflow and categories into the knowledge document.",
    selection=dg.AssetSelection.assets("financial_overview"),
)

knowledge_retention_job = dg.define_asset_job(
    name="knowledge_retention_sweep_job",
    selection=dg.AssetSelection.assets("knowledge_retention_sweep"),
)


@dg.schedule(
    job=generate_openbanking_overview,
    cron_schedule="0 6 * * *",
    execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every morning, each tenant's overview for the day before (a complete day).",
)
def daily_overview_schedule(context: dg.ScheduleEvaluationContext):
    from datetime import timedelta

    from pfo_pipeline.tenancy.config import usable_tenants

    day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
    return [
        dg.RunRequest(
            partition_key=dg.MultiPartitionKey({"tenant": tenant_id, "day": day}),
            run_key=f"overview:{tenant_id}:{day}",
        )
        for tenant_id in usable_tenants()
    ]


retention_schedule = dg.ScheduleDefinition(
    job=knowledge_retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily 180-day retention sweep of the knowledge space.",
)
