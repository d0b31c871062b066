"""Analytics automation: the dbt build as a job."""

import dagster as dg

build_analytics_marts = dg.define_asset_job(
    name="build_analytics_marts",
    description="dbt build: staging views, analytics marts and their tests.",
    selection=dg.AssetSelection.groups("analytics", "insights"),  # all dbt models
)
