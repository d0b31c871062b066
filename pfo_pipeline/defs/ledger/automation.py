"""Ledger automation: the sync workflows as asset jobs, and their polling schedules.

The four workflows of the original design are asset jobs.

Each workflow's first step is a ledger asset (its retry policy lives on the asset) and its second
step the canonical read consumers use (`accounts_listing`, `transactions_listing`,
`balances_readable`), an asset check with its own retry policy, run with the asset's other checks.

One schedule per sync job ticks at the shortest `polling_interval_ms` of the tenants (whole
minutes, at least 1); at each tick a tenant gets a run only when the tick falls on its own interval,
with a run key so a re-evaluated tick never launches twice.
"""

import hashlib
from math import gcd
from pathlib import Path

import dagster as dg

from pfo_pipeline.tenancy.config import (
    TenantConfig,
    TenantConfigError,
    read_tenants_file,
    usable_tenants,
)

sync_openbanking_accounts = dg.define_asset_job(
    name="sync_openbanking_accounts",
    description="Validate Powens connectivity, sync bank accounts into the ledger, then list them.",
    selection=dg.AssetSelection.assets("powens_connection_health", "bank_accounts"),
)

sync_openbanking_transactions = dg.define_asset_job(
    name="sync_openbanking_transactions",
    description="Incremental transaction sync for every linked account, then list transactions.",
    selection=dg.AssetSelection.assets("bank_transactions"),
)

refresh_openbanking_balances = dg.define_asset_job(
    name="refresh_openbanking_balances",
    description="Snapshot today's balances, then read them back.",
    selection=dg.AssetSelection.assets("account_balances"),
)

SYNC_JOBS = [sync_openbanking_accounts, sync_openbanking_transactions, refresh_openbanking_balances]


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
        tenants = usable_tenants()
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


class TenantsFileProblem(Exception):
    """A tenant of the tenants file does not validate; the message names the tenant and key."""


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-reads the tenants file: fails, naming each broken tenant and key (or the line "
    "and column of a YAML error), while a tenant is left out of the code location; says which "
    "secret variables are not set, once per change.",
)
def tenants_file_problems(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    try:
        tenants_file = read_tenants_file()
    except TenantConfigError as exc:
        raise TenantsFileProblem(f"{exc}: no tenant loads until it is fixed") from None
    if tenants_file.problems:
        raise TenantsFileProblem(
            f"{len(tenants_file.problems)} tenant(s) left out until fixed: "
            + " | ".join(tenants_file.problems)
        )
    warnings = tenants_file.warnings()
    # Warned once per change of the file or of what is unset, not at every tick.
    seen = _fingerprint(tenants_file.path, warnings)
    if seen != context.cursor:
        for warning in warnings:
            context.log.warning(warning)
        context.update_cursor(seen)
    return dg.SkipReason(
        f"all {len(tenants_file.tenants)} tenants load"
        + (f"; {len(warnings)} secret variable(s) not set here" if warnings else "")
    )


def _fingerprint(path: Path, warnings: list[str]) -> str:
    digest = hashlib.sha256(path.read_bytes())
    digest.update("\n".join(warnings).encode())
    return digest.hexdigest()[:32]


@dg.definitions
def ledger_automation() -> dg.Definitions:
    """The sync jobs, and their schedules at the tenants' tick (the tenants file is read here, when
    the code location loads, not at import)."""
    cron = cron_for(tick_minutes(usable_tenants()))
    return dg.Definitions(
        jobs=SYNC_JOBS,
        schedules=[_polling_schedule(job, cron) for job in SYNC_JOBS],
        sensors=[tenants_file_problems],
    )
