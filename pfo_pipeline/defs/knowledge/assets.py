"""The financial-overview knowledge document and its 180-day retention, as Dagster assets.

`financial_overview` is partitioned by tenant and day and built only from the dbt marts; the
retention sweep deletes expired entries idempotently. Both write the lake (pool `lake`).
"""

from datetime import UTC, date, datetime
from typing import Literal

import dagster as dg

from pfo_pipeline.defs.knowledge.dagster_retention import forget_expired_overview_runs
from pfo_pipeline.defs.partitions import overview_partitions, partitioned
from pfo_pipeline.defs.resources import LAKE, LakeResource, PowensResource
from pfo_pipeline.knowledge.chart import chart_markdown, render_trend_chart
from pfo_pipeline.knowledge.insights import InsightsSettings, build_insights, insights_settings
from pfo_pipeline.knowledge.overview import OverviewRequest, build_overview
from pfo_pipeline.knowledge.periods import RETENTION_DAYS, is_within_retention, today
from pfo_pipeline.knowledge.retention import sweep_expired
from pfo_pipeline.knowledge.store import write_overview
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


@dg.asset(
    deps=MARTS,
    group_name="knowledge",
    owners=["team:platform-finance"],
    kinds={"duckdb", "markdown"},
    pool=LAKE,
    retry_policy=RETRY_GENERATE_OVERVIEW,
    description="knowledge.financial_overview: week, month and quarter overviews ending at the "
    "partition day, derived from the analytics marts only (no PII), chunked to <= 600 tokens.",
)
def financial_overview(
    context: dg.AssetExecutionContext,
    config: OverviewConfig,
    powens: PowensResource,
    lake: LakeResource,
) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    tenant = powens.tenant(keys["tenant"])
    day = date.fromisoformat(keys["day"])
    generated_at = datetime.now(UTC)
    if not is_within_retention(day, today(generated_at)):
        raise dg.Failure(f"partition day {day} is older than the 180-day retention; refused")
    started = generated_at
    written, markdown_parts, chart_png = [], [], None
    with lake.get_connection() as conn:
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
                chart_png = render_trend_chart(conn, overview)
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
    if chart_png is not None:
        # Inline, so the UI shows the image itself (a file path means nothing in a browser) and
        # no PNG outlives the knowledge space's retention on disk.
        metadata["trend_chart"] = dg.MetadataValue.md(chart_markdown(chart_png))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    deps=[financial_overview],
    group_name="knowledge",
    owners=["team:platform-finance"],
    kinds={"duckdb"},
    pool=LAKE,
    description="Deletes knowledge entries past their 180-day expiry, their chunks and any orphan "
    "chunk, and the expired overview runs Dagster keeps (their metadata copies the Markdown); "
    "idempotent.",
)
def knowledge_retention_sweep(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    swept_on = today()
    with lake.get_connection() as conn:
        report = sweep_expired(conn, swept_on, RETENTION_DAYS)
        remaining = conn.execute("SELECT count(*) FROM knowledge.financial_overview").fetchall()
    forgotten = forget_expired_overview_runs(context.instance, swept_on, context.run_id)
    context.log.info(
        f"Retention sweep: removed {report.entries_removed} entries, {report.chunks_removed} "
        f"chunks, and {len(forgotten)} expired overview runs from Dagster's storage"
    )
    return dg.MaterializeResult(
        metadata={
            "swept_on": swept_on.isoformat(),
            "entries_removed": report.entries_removed,
            "chunks_removed": report.chunks_removed,
            "removed_entry_ids": list(report.entry_ids)[:50],
            "entries_remaining": remaining[0][0],
            "dagster_runs_deleted": len(forgotten),
        }
    )


@dg.definitions
def knowledge_assets() -> dg.Definitions:
    """The overview, partitioned by tenant and day (built here, at load), and the sweep."""
    return dg.Definitions(
        assets=[
            *partitioned(overview_partitions(), [financial_overview]),
            knowledge_retention_sweep,
        ]
    )
