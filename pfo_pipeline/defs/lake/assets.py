"""Lake upkeep as a scheduled Dagster job: compaction, snapshot expiry past the time-travel
window, removal of unreferenced files (`pfo_pipeline.lake.maintenance`); expired overview text
is forgotten again in the files the merge made (`knowledge.retention`)."""

import dagster as dg

from pfo_pipeline.defs.resources import LAKE, LakeResource
from pfo_pipeline.knowledge.periods import RETENTION_DAYS, today
from pfo_pipeline.knowledge.retention import forget_expired_text
from pfo_pipeline.lake.maintenance import DEFAULT_TIME_TRAVEL_DAYS, maintain


class LakeMaintenanceConfig(dg.Config):
    time_travel_days: int = DEFAULT_TIME_TRAVEL_DAYS
    # Files older than the catalog are an earlier lake's data, not orphans: kept unless asked.
    delete_unknown_files: bool = False


@dg.asset(
    group_name="lake",
    owners=["team:platform-finance"],
    kinds={"duckdb"},
    pool=LAKE,
    description="DuckLake upkeep: inlined rows flushed to Parquet, small files merged, snapshots "
    "older than the time-travel window (default 30 days) expired and their files deleted, "
    "orphan files of killed commits deleted once no writer can still commit them.",
)
def lake_maintenance(
    context: dg.AssetExecutionContext, config: LakeMaintenanceConfig, lake: LakeResource
) -> dg.MaterializeResult:
    if config.time_travel_days < 0:
        raise dg.Failure(f"time_travel_days: must be >= 0, got {config.time_travel_days}")
    with lake.get_connection() as conn:
        report = maintain(
            conn,
            window_days=config.time_travel_days,
            delete_unknown_files=config.delete_unknown_files,
        )
        # Merged files are new files: expired overview text must not come back through them.
        forgotten = forget_expired_text(conn, today(), RETENTION_DAYS)
    context.log.info(f"Lake maintenance: {report.summary()}")
    return dg.MaterializeResult(
        metadata={
            **report.as_metadata(),
            "time_travel_days": config.time_travel_days,
            "expired_text_files_rewritten": forgotten.files_rewritten,
        }
    )
