"""Sync schedules derived from each tenant's `polling_interval_ms`.

One schedule per sync job ticks at the shortest interval (whole minutes, at least 1); at each tick a
tenant gets a run only when the tick falls on its own interval, with a run key so a re-evaluated
tick never launches twice.
"""

from math import gcd

import dagster as dg

from pfo_pipeline.defs.jobs import SYNC_JOBS
from pfo_pipeline.tenancy.config import TenantConfig, load_tenants


def _interval_minutes(tenant: TenantConfig) -> int:
    binding = tenant.primary_open_banking
    ms = binding.config.polling_interval_ms if binding else 300_000
    return max(1, round(ms / 60_000))


def tick_minutes(tenants: dict[str, TenantConfig]) -> int:
    """The schedule's tick: the gcd of the tenants' intervals, so every tenant's cadence is hit."""
    step = 0
    for tenant in tenants.values():
        step = gcd(step, _interval_minutes(tenant))
    return step or 5


def cron_for(minutes: int) -> str:
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    return "*/5 * * * *"  # irregular intervals: tick every 5 minutes and filter per tenant


def due_tenants(tenants: dict[str, TenantConfig], scheduled_minute: int) -> list[str]:
    """Tenants whose interval divides the tick's minute count (minutes since the epoch)."""
    return [
        tenant_id
        for tenant_id, tenant in tenants.items()
        if tenant.primary_open_banking is not None
        and scheduled_minute % _interval_minutes(tenant) == 0
    ]


def _polling_schedule(job, cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="Europe/Paris",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Runs {job.name} for each tenant at its polling_interval_ms.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        minute = int(context.scheduled_execution_time.timestamp() // 60)
        tenants = load_tenants()
        due = due_tenants(tenants, minute)
        if not due:
            return dg.SkipReason("no tenant is due at this tick")
        return [
            dg.RunRequest(
                partition_key=tenant_id,
                run_key=f"{job.name}:{tenant_id}:{minute}",
                tags={"pfo/tenant": tenant_id},
            )
            for tenant_id in due
        ]

    return _schedule


_CRON = cron_for(tick_minutes(load_tenants()))
SYNC_SCHEDULES = [_polling_schedule(job, _CRON) for job in SYNC_JOBS]
