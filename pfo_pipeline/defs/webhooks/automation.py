"""The webhook sensor: verified Powens events in the inbox become runs for the right tenant.

CONNECTION_SYNCED and ACCOUNT_SYNCED -> the transactions sync; ACCOUNTS_FETCHED and a completed bank
connection -> the accounts sync. The inbox event key is the run key, so a repeated event is a
no-op. Every other event (a connect error, an event type we do not sync on) becomes an
`openbanking.webhook.unmapped` telemetry event, written by a small run in the `lake` pool: the
sensor itself never opens the lake (a sensor tick must stay light and never wait on a writer).
"""

import uuid
from datetime import datetime

import dagster as dg

from pfo_pipeline.defs.ledger import automation as ledger_jobs
from pfo_pipeline.defs.resources import (
    LAKE,
    LakeResource,
    PowensResource,
    WebhookSensorConfig,
)
from pfo_pipeline.telemetry import events
from pfo_pipeline.webhooks.receiver import CONNECT_EVENT

EVENT_JOBS = {
    "CONNECTION_SYNCED": ledger_jobs.sync_openbanking_transactions.name,
    "ACCOUNT_SYNCED": ledger_jobs.sync_openbanking_transactions.name,
    "ACCOUNTS_FETCHED": ledger_jobs.sync_openbanking_accounts.name,
    CONNECT_EVENT: ledger_jobs.sync_openbanking_accounts.name,
}
# A fixed namespace: the same inbox event always gets the same telemetry event id.
_EVENT_ID_NAMESPACE = uuid.UUID("5f0d9a52-3c1e-4e59-9d1e-6b1f2a7c9e40")


class UnmappedWebhooksConfig(dg.Config):
    """Inbox sequence numbers of the events to record as telemetry."""

    seqs: list[int]


@dg.op(pool=LAKE, description="Writes unmapped webhook events to telemetry.events.")
def record_unmapped_webhooks(
    context: dg.OpExecutionContext,
    config: UnmappedWebhooksConfig,
    lake: LakeResource,
    webhooks: WebhookSensorConfig,
    powens: PowensResource,
) -> dg.Output[None]:
    inbox = webhooks.inbox()
    try:
        pending = inbox.events_by_seq(config.seqs)
    finally:
        inbox.close()
    tenants = powens.tenants()
    recorded = 0
    with lake.get_connection() as conn:
        for event in pending:
            tenant = tenants.get(event.tenant_id)
            if tenant is None:
                context.log.warning(
                    f"webhook event #{event.seq} ({event.event_type}) names tenant "
                    f"{event.tenant_id!r}, which is no longer configured; not recorded"
                )
                continue
            telemetry = events.build_event(
                events.WEBHOOK_UNMAPPED,
                events.TelemetryContext.for_tenant(tenant),
                {**event.summary, "event_type": event.event_type, "inbox_seq": event.seq},
                occurred_at=datetime.fromisoformat(event.received_at),
            )
            # Idempotent: a re-run of this step writes the same ids, which the insert skips.
            telemetry["event_id"] = uuid.uuid5(_EVENT_ID_NAMESPACE, event.event_key).hex
            events.emit(telemetry, conn=conn, logger=context.log)
            recorded += 1
    return dg.Output(None, metadata={"events_recorded": recorded, "seqs": len(config.seqs)})


@dg.job(description="Records webhook events that trigger no sync as telemetry events.")
def record_webhook_telemetry() -> None:
    record_unmapped_webhooks()


@dg.sensor(
    jobs=[
        ledger_jobs.sync_openbanking_transactions,
        ledger_jobs.sync_openbanking_accounts,
        record_webhook_telemetry,
    ],
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Turns verified Powens webhooks into the matching sync for that tenant.",
)
def powens_webhook_sensor(
    context: dg.SensorEvaluationContext, webhooks: WebhookSensorConfig, powens: PowensResource
):
    after = int(context.cursor or 0)
    inbox = webhooks.inbox()
    try:
        pending = inbox.events_after(after)
    finally:
        inbox.close()
    tenants = powens.tenants()
    requests = []
    unmapped: list[int] = []
    for event in pending:
        job = EVENT_JOBS.get(event.event_type)
        if event.tenant_id not in tenants:
            context.log.warning(
                f"webhook event #{event.seq} names unknown tenant {event.tenant_id!r}; skipped"
            )
        elif job is None:
            unmapped.append(event.seq)
        else:
            requests.append(
                dg.RunRequest(
                    run_key=f"webhook:{event.event_key}",
                    job_name=job,
                    partition_key=event.tenant_id,
                    tags={"pfo/webhook_event": event.event_type, "pfo/tenant": event.tenant_id},
                )
            )
    if unmapped:
        requests.append(
            dg.RunRequest(
                run_key=f"webhook-telemetry:{unmapped[0]}-{unmapped[-1]}",
                job_name=record_webhook_telemetry.name,
                run_config={"ops": {record_unmapped_webhooks.name: {"config": {"seqs": unmapped}}}},
                tags={"pfo/webhook_event": "unmapped"},
            )
        )
    new_cursor = str(pending[-1].seq) if pending else context.cursor
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)
