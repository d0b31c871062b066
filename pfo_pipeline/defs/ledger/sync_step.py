"""The Dagster side of a ledger sync step, shared by the three sync assets: the partition's
tenant, the retry count, the sync itself (`operations.tenant_sync.sync_tenant`, outside Dagster),
then the step's own checks on the rows it wrote (`step_checks`), reported with its
materialisation. A failure no retry can fix fails the step on this attempt (`failures`).
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from pfo_pipeline.defs.failures import fail_fast_if_permanent
from pfo_pipeline.defs.ledger.step_checks import step_check_results
from pfo_pipeline.defs.resources import LakeResource, PowensResource
from pfo_pipeline.lake import one_snapshot
from pfo_pipeline.operations.tenant_sync import Stream, SyncAttempt, sync_tenant
from pfo_pipeline.operations.transactions_sync import TransactionsSyncOptions


def run_sync_step(
    context: dg.AssetExecutionContext,
    stream: Stream,
    powens: PowensResource,
    lake: LakeResource,
    transactions: TransactionsSyncOptions | None = None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Sync the partition's tenant and check what it wrote; nothing when the tenant was skipped.
    With only the checks selected (re-run from the UI), check the whole table, sync nothing."""
    if not context.selected_asset_keys:
        yield from _step_checks(context, stream, lake, load_id=None)
        return
    tenant = powens.tenant(context.partition_key)
    with fail_fast_if_permanent(stream.value):
        report = sync_tenant(
            stream,
            tenant,
            lake.location(),
            client_options=powens.client_options(),
            transactions=transactions,
            attempt=SyncAttempt(context.retry_number + 1, _max_retries(context)),
            log=context.log,
            holder=f"run {context.run_id}",
        )
    if report is None:
        return
    checks = list(_step_checks(context, stream, lake, report.load_id))
    yield dg.MaterializeResult(metadata=report.metadata, check_results=checks)


def _step_checks(
    context: dg.AssetExecutionContext, stream: Stream, lake: LakeResource, load_id: str | None
) -> Iterator[dg.AssetCheckResult]:
    """The selected step checks, read from one snapshot of the lake."""
    selected = context.selected_asset_check_keys
    asset = dg.AssetKey(stream.value)
    with lake.get_connection() as conn, one_snapshot(conn):
        results = step_check_results(conn, stream.value, load_id)
    yield from (r for r in results if dg.AssetCheckKey(asset, r.check_name) in selected)


def _max_retries(context: dg.AssetExecutionContext) -> int:
    policy = context.op_def.retry_policy
    return policy.max_retries if policy else 0
