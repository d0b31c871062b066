"""Lake automation: the nightly maintenance job and its schedule."""

import dagster as dg

lake_maintenance_job = dg.define_asset_job(
    name="lake_maintenance_job", selection=dg.AssetSelection.assets("lake_maintenance")
)

lake_maintenance_schedule = dg.ScheduleDefinition(
    job=lake_maintenance_job,
    cron_schedule="15 4 * * *",
    execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night, after the retention sweep.",
)
