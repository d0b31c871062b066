"""The webhook sensor: verified Powens events in the inbox become syncs for the right tenant.

CONNECTION_SYNCED and ACCOUNT_SYNCED -> the transactions sync; ACCOUNTS_FETCHED and a completed bank
connection -> the accounts sync. The inbox event key is the run key, so a repeated event is a
no-op. Other events become an `openbanking.webhook.unmapped` telemetry event (logged: the sensor
never writes the ledger, which has a single writer).
"""

from pathlib import Path

import dagster as dg

from pfo_pipeline.defs.jobs import sync_openbanking_accounts, sync_openbanking_transactions
from pfo_pipeline.telemetry import events
from pfo_pipeline.tenancy.config import load_tenants
from pfo_pipeline.webhooks.inbox import Inbox, inbox_path
from pfo_pipeline.webhooks.receiver import CONNECT_EVENT

EVENT_JOBS = {
    "CONNECTION_SYNCED": sync_openbanking_transactions.name,
    "ACCOUNT_SYNCED": sync_openbanking_transactions.name,
    "ACCOUNTS_FETCHED": sync_openbanking_accounts.name,
    CONNECT_EVENT: sync_openbanking_accounts.name,
}


class WebhookSensorConfig(dg.ConfigurableResource):
    """Where the receiver's inbox lives (`PFO_WEBHOOK_INBOX`, default data/webhook_inbox.sqlite3)."""

    inbox_path: str | None = None

    def inbox(self) -> Inbox:
        return Inbox(Path(self.inbox_path) if self.inbox_path else inbox_path())


@dg.sensor(
    jobs=[sync_openbanking_transactions, sync_openbanking_accounts],
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Turns verified Powens webhooks into the matching sync for that tenant.",
)
def powens_webhook_sensor(context: dg.SensorEvaluationContext, webhooks: WebhookSensorConfig):
    after = int(context.cursor or 0)
    inbox = webhooks.inbox()
    try:
        pending = inbox.events_after(after)
    finally:
        inbox.close()
    tenants = load_tenants()
    requests = []
    for event in pending:
        job = EVENT_JOBS.get(event.event_type)
        tenant = tenants.get(event.tenant_id)
        if job is None or tenant is None:
            if tenant is not None:
                events.emit(
                    events.build_event(
                        events.WEBHOOK_UNMAPPED,
                        events.TelemetryContext.for_tenant(tenant),
                        {"event_type": event.event_type, "inbox_seq": event.seq},
                    ),
                    conn=None,
                )
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"webhook:{event.event_key}",
                job_name=job,
                partition_key=event.tenant_id,
                tags={"pfo/webhook_event": event.event_type, "pfo/tenant": event.tenant_id},
            )
        )
    new_cursor = str(pending[-1].seq) if pending else context.cursor
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)
