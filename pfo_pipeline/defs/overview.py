"""The financial-overview knowledge document and its 180-day retention, as Dagster assets.

`financial_overview` is partitioned by tenant and day and built only from the dbt marts; the
retention sweep deletes expired entries idempotently. Both write the ledger file: `duckdb_ledger`.
"""

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import dagster as dg

from pfo_pipeline.defs.partitions import overview_partitions
from pfo_pipeline.defs.resources import LEDGER_POOL, LakeResource, PowensResource, ledger_connection
from pfo_pipeline.knowledge.chart import render_trend_chart
from pfo_pipeline.knowledge.insights import InsightsSettings, build_insights, insights_settings
from pfo_pipeline.knowledge.overview import OverviewRequest, build_overview
from pfo_pipeline.knowledge.periods import is_within_retention
from pfo_pipeline.knowledge.pii_scan import scan_knowledge_for_pii
from pfo_pipeline.knowledge.store import ensure_knowledge_schema, sweep_expired, write_overview
from pfo_pipeline.telemetry import events

RETRY_GENERATE_OVERVIEW = dg.RetryPolicy(max_retries=3, delay=1.5, backoff=dg.Backoff.EXPONENTIAL)
PERIODS: tuple[Literal["week", "month", "quarter"], ...] = ("week", "month", "quarter")
MARTS = [
    dg.AssetKey(["analytics", name])
    for name in (
        "dim_accounts",
        "fct_daily_cashflow",
        "fct_daily_category_flows",
        "fct_daily_balances",
        "fct_payee_transactions",
        "fct_fx_rates",
    )
]


class OverviewConfig(dg.Config):
    """Mirrors `pfo.openbanking.generate-overview`: account filter, section toggles, and the
    thresholds of the insight sections (commitments, due next, anomalies, net worth)."""

    account_ids: list[str] | None = None
    include_categories: bool = True
    include_cashflow_trend: bool = True
    include_insights: bool = True
    reporting_currency: str = "EUR"
    fx_rates: dict[str, float] | None = None  # currency -> units of the reporting currency
    low_balance_floor: float = 0.0
    due_days: int = 30
    new_payee_min_amount: float = 500.0
    category_multiple: float = 4.0
    duplicate_window_days: int = 1
    duplicate_min_amount: float = 20.0
    new_fee_quiet_days: int = 180

    def insights(self) -> InsightsSettings:
        return insights_settings(self.model_dump())


def _chart_dir(duckdb: LakeResource) -> Path:
    """Beside the lake's data (a local folder); under `data/` when the data is in object storage."""
    data_path = duckdb.location().data_path
    base = Path("data") if "://" in data_path else Path(data_path).expanduser()
    return base.resolve().parent / "overview_charts"


@dg.asset(
    partitions_def=overview_partitions,
    deps=MARTS,
    group_name="knowledge",
    owners=["team:platform-finance"],
    kinds={"duckdb", "markdown"},
    pool=LEDGER_POOL,
    retry_policy=RETRY_GENERATE_OVERVIEW,
    description="knowledge.financial_overview: week, month and quarter overviews ending at the "
    "partition day, derived from the analytics marts only (no PII), chunked to <= 600 tokens.",
)
def financial_overview(
    context: dg.AssetExecutionContext,
    config: OverviewConfig,
    powens: PowensResource,
    duckdb: LakeResource,
) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    tenant = powens.tenant(keys["tenant"])
    day = date.fromisoformat(keys["day"])
    generated_at = datetime.now(UTC)
    if not is_within_retention(day, generated_at.date()):
        raise dg.Failure(f"partition day {day} is older than the 180-day retention; refused")
    started = generated_at
    written, markdown_parts, chart_path = [], [], None
    with ledger_connection(duckdb) as conn:
        ensure_knowledge_schema(conn)
        settings = config.insights()
        insights = (
            build_insights(conn, tenant.tenant_id, day, settings)
            if config.include_insights
            else None
        )
        for period in PERIODS:
            overview = build_overview(
                conn,
                OverviewRequest(
                    tenant_id=tenant.tenant_id,
                    period=period,
                    as_of=day,
                    account_ids=tuple(config.account_ids) if config.account_ids else None,
                    include_categories=config.include_categories,
                    include_cashflow_trend=config.include_cashflow_trend,
                    include_insights=config.include_insights,
                    insights=settings,
                ),
                insights,
            )
            result = write_overview(conn, overview, generated_at)
            written.append((period, overview, result))
            markdown_parts.append(overview.markdown)
            if period == "month":
                directory = _chart_dir(duckdb)
                directory.mkdir(parents=True, exist_ok=True)
                chart_path = render_trend_chart(
                    overview, directory / f"{tenant.tenant_id}_{day.isoformat()}_month.png"
                )
            events.emit(
                events.build_event(
                    events.OVERVIEW_GENERATED,
                    events.TelemetryContext.for_tenant(tenant),
                    {
                        "knowledge_entry_id": result.entry_id,
                        "period": period,
                        "period_start": overview.period_start.isoformat(),
                        "period_end": overview.period_end.isoformat(),
                        "chunk_count": result.chunk_count,
                        "duration_ms": int((datetime.now(UTC) - started).total_seconds() * 1000),
                    },
                ),
                conn=conn,
            )
    metadata: dict[str, object] = {
        "entries": {p: r.entry_id for p, _, r in written},
        "chunks": sum(r.chunk_count for _, _, r in written),
        "periods": {
            p: f"{o.period_start.isoformat()}..{o.period_end.isoformat()}" for p, o, _ in written
        },
        "preview": dg.MetadataValue.md("\n\n---\n\n".join(markdown_parts)),
    }
    if chart_path is not None:
        metadata["trend_chart"] = dg.MetadataValue.path(str(chart_path))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=financial_overview,
    blocking=True,
    description="No IBAN, account number, counterparty or transaction wording from the ledger "
    "appears anywhere in the knowledge space.",
)
def knowledge_space_has_no_pii(duckdb: LakeResource) -> dg.AssetCheckResult:
    with ledger_connection(duckdb) as conn:
        ensure_knowledge_schema(conn)
        findings = scan_knowledge_for_pii(conn)
    return dg.AssetCheckResult(
        passed=not findings,
        metadata={
            "findings": len(findings),
            "kinds": sorted({f.kind for f in findings}),
            "entries": sorted({f.entry_id for f in findings})[:20],
        },
    )


@dg.asset(
    deps=[financial_overview],
    group_name="knowledge",
    owners=["team:platform-finance"],
    kinds={"duckdb"},
    pool=LEDGER_POOL,
    description="Deletes knowledge entries and chunks past their 180-day expiry; idempotent.",
)
def knowledge_retention_sweep(
    context: dg.AssetExecutionContext, duckdb: LakeResource
) -> dg.MaterializeResult:
    today = datetime.now(UTC).date()
    with ledger_connection(duckdb) as conn:
        ensure_knowledge_schema(conn)
        report = sweep_expired(conn, today)
        remaining = conn.execute("SELECT count(*) FROM knowledge.financial_overview").fetchall()
    context.log.info(
        f"Retention sweep: removed {report.entries_removed} entries, {report.chunks_removed} chunks"
    )
    return dg.MaterializeResult(
        metadata={
            "swept_on": today.isoformat(),
            "entries_removed": report.entries_removed,
            "chunks_removed": report.chunks_removed,
            "removed_entry_ids": list(report.entry_ids)[:50],
            "entries_remaining": remaining[0][0],
        }
    )


generate_openbanking_overview = dg.define_asset_job(
    name="generate_openbanking_overview",
    description="Aggregate balances, cashflow and categories into the knowledge document.",
    selection=dg.AssetSelection.assets(financial_overview),
)

knowledge_retention_job = dg.define_asset_job(
    name="knowledge_retention_sweep_job",
    selection=dg.AssetSelection.assets(knowledge_retention_sweep),
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

    from pfo_pipeline.tenancy.config import load_tenants

    day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
    return [
        dg.RunRequest(
            partition_key=dg.MultiPartitionKey({"tenant": tenant_id, "day": day}),
            run_key=f"overview:{tenant_id}:{day}",
        )
        for tenant_id in load_tenants()
    ]


retention_schedule = dg.ScheduleDefinition(
    job=knowledge_retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Daily 180-day retention sweep of the knowledge space.",
)
