"""Partitions: one per tenant (independent runs that share nothing), and tenant x day for the
overview, whose days start 180 days back: older partitions are neither offered nor accepted."""

from datetime import date, timedelta

import dagster as dg

from pfo_pipeline.knowledge.periods import RETENTION_DAYS
from pfo_pipeline.tenancy.config import load_tenants


def tenant_ids() -> list[str]:
    return list(load_tenants())


tenant_partitions = dg.StaticPartitionsDefinition(tenant_ids())


def retention_start(today: date | None = None) -> date:
    return (today or date.today()) - timedelta(days=RETENTION_DAYS)


overview_day_partitions = dg.DailyPartitionsDefinition(
    start_date=retention_start().isoformat(), timezone="Europe/Paris", end_offset=1
)
overview_partitions = dg.MultiPartitionsDefinition(
    {"tenant": tenant_partitions, "day": overview_day_partitions}
)
