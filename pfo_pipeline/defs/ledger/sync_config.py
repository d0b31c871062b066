"""Run config of the transactions sync, and the date window it asks for."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from pfo_pipeline.defs.failures import NotRetryable
from pfo_pipeline.operations.transactions_sync import DEFAULT_BATCH_ROWS, TransactionsSyncOptions
from pfo_pipeline.powens.calendar_bounds import CalendarBoundError, parse_window


class TransactionsSyncConfig(dg.Config):
    """Run config of the transactions sync (incremental by default)."""

    full_refresh: bool = False
    backfill_days: int | None = None
    min_date: str | None = Field(
        default=None,
        description="Re-read from this day (inclusive): YYYY-MM-DD, YYYY-MM (its first day) or "
        "YYYY (1 January), Powens' CalendarBound.",
    )
    max_date: str | None = Field(
        default=None,
        description="Re-read up to this day (inclusive): YYYY-MM-DD, YYYY-MM (its last day) or "
        "YYYY (31 December).",
    )
    include_pending: bool = True
    overlap_minutes: int = 60
    batch_rows: int = DEFAULT_BATCH_ROWS
    page_size: int = Field(default=1000, ge=1, le=1000, description="Powens `limit` per page.")
    fetch_concurrency: int = Field(
        default=4,
        ge=1,
        le=16,
        description="Page chains over date windows read from Powens side by side (1: one chain).",
    )

    def options(self) -> TransactionsSyncOptions:
        """The sync's options; a bad date fails the step at once (`backfill_window`)."""
        min_date, max_date = backfill_window(self)
        return TransactionsSyncOptions(
            full_refresh=self.full_refresh,
            backfill_days=self.backfill_days,
            min_date=min_date,
            max_date=max_date,
            include_pending=self.include_pending,
            overlap=timedelta(minutes=self.overlap_minutes),
            batch_rows=self.batch_rows,
            page_size=self.page_size,
            concurrency=self.fetch_concurrency,
        )


def backfill_window(config: TransactionsSyncConfig) -> tuple[date | None, date | None]:
    """The run config's `min_date`/`max_date` as inclusive days; a bad value fails the step at
    once (no retry can fix it), naming the key and the forms Powens accepts."""
    try:
        window = parse_window(config.min_date, config.max_date, keys=("min_date", "max_date"))
    except CalendarBoundError as exc:
        raise NotRetryable("bank_transactions run config", exc) from exc
    if config.backfill_days is not None and window[0] is not None:
        raise NotRetryable(
            "bank_transactions run config",
            CalendarBoundError("min_date", "give min_date or backfill_days, not both"),
        )
    return window
