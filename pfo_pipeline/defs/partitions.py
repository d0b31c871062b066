"""Partitions: one per tenant (independent runs that share nothing), and tenant x day for the
overview, whose days start 180 days back: older partitions are neither offered nor accepted.

The tenants come from the tenants file and the days from today's date, so both are built when the
code location loads (then cached), never when a module is imported: importing does no I/O. A
broken tenant is left out and the others keep running; a file that cannot be read or parsed at all
leaves no tenant, and the location still loads; the `tenants_file_problems` sensor names either.
Assets are declared without partitions and given them by `partitioned` in their domain's
`@dg.definitions` loader.
"""

from collections.abc import Sequence
from datetime import date, timedelta
from functools import cache

import dagster as dg

from pfo_pipeline.knowledge.periods import OVERVIEW_TIMEZONE, RETENTION_DAYS, today
from pfo_pipeline.tenancy.config import usable_tenants


def tenant_ids() -> list[str]:
    return list(usable_tenants())


@cache
def tenant_partitions() -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(tenant_ids())


def retention_start(day: date | None = None) -> date:
    """The oldest overview day kept, counted back from `day` (default: the overview's today)."""
    return (day or today()) - timedelta(days=RETENTION_DAYS)


@cache
def overview_partitions() -> dg.MultiPartitionsDefinition:
    days = dg.DailyPartitionsDefinition(
        start_date=retention_start().isoformat(), timezone=OVERVIEW_TIMEZONE.key, end_offset=1
    )
    return dg.MultiPartitionsDefinition({"tenant": tenant_partitions(), "day": days})


def partitioned(
    partitions: dg.PartitionsDefinition, assets: Sequence[dg.AssetsDefinition]
) -> list[dg.AssetsDefinition]:
    """The assets, partitioned by `partitions` (everything else about them unchanged)."""
    return list(
        dg.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=partitions), assets)
    )
