"""`openbanking.accounts.sync`: the connection's accounts from Powens, mapped, validated and
upserted in one load (renumbered accounts keep their canonical id, `ledger.mapping`), before the
transactions and balances that need them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb

from pfo_pipeline.ledger.accounts_load import apply_accounts, known_account_identities
from pfo_pipeline.ledger.loads import fail_load, start_load
from pfo_pipeline.ledger.mapping import AccountResolution, map_accounts, resolve_accounts
from pfo_pipeline.ledger.records import BankAccountRecord
from pfo_pipeline.ledger.types import LoadStats, Reject, SyncContext
from pfo_pipeline.ledger.validation import validate_batch
from pfo_pipeline.operations.sync_context import load_metadata, utc_now
from pfo_pipeline.powens.client import PowensClient
from pfo_pipeline.powens.errors import PowensInvalidResponseError, PowensParseError
from pfo_pipeline.powens.models import PowensAccount, PowensConnector
from pfo_pipeline.powens.record_parsing import parse_account, parse_connection


@dataclass
class AccountsSyncResult:
    synced: int
    failed: int
    load_id: str
    stats: LoadStats
    errors: list[str] = field(default_factory=list)
    next_sync_suggested_at: datetime | None = None

    def metadata(self) -> dict[str, Any]:
        """What the materialisation shows."""
        shown = load_metadata(self.load_id, self.stats)
        if self.next_sync_suggested_at is not None:
            shown["next_sync_suggested_at"] = self.next_sync_suggested_at.isoformat()
        return shown

    def telemetry(self) -> dict[str, Any]:
        """The `openbanking.accounts.synced` event's own properties."""
        return {"synced_count": self.synced, "failed_count": self.failed}


def sync_accounts(
    conn: duckdb.DuckDBPyConnection,
    client: PowensClient,
    ctx: SyncContext,
    *,
    polling_interval: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> AccountsSyncResult:
    """Reconcile account metadata before transactions and balances; one load."""
    now = now or utc_now()
    start_load(conn, ctx, "accounts", "full", now)
    try:
        connectors = connectors_of(client.list_connections())
        accounts, rejects = parse_accounts(client.list_accounts(include_disabled=True))
        resolution = resolve_known_accounts(conn, ctx, accounts)
        frame = map_accounts(resolution, connectors, ctx)
        valid, invalid = validate_batch(BankAccountRecord, frame, conn)
        rejects += invalid
        stats = apply_accounts(conn, ctx, valid, resolution.new_aliases, rejects, now)
    except Exception as exc:
        fail_load(conn, ctx.load_id, str(exc), utc_now())
        raise
    return AccountsSyncResult(
        synced=len(valid),
        failed=len(rejects),
        load_id=ctx.load_id,
        stats=stats,
        errors=[f"{r.external_id}: {'; '.join(r.reasons)}" for r in rejects],
        next_sync_suggested_at=now + polling_interval,
    )


def parse_accounts(raw_accounts: list) -> tuple[list[PowensAccount], list[Reject]]:
    """Accounts as parsed; one that breaks a parsing rule is a reject, not a failed sync."""
    accounts, rejects = [], []
    for raw in raw_accounts:
        try:
            accounts.append(parse_account(raw))
        except PowensParseError as exc:
            external = raw.get("id") if isinstance(raw, dict) else None
            rejects.append(
                Reject(str(external) if external is not None else None, (str(exc),), raw)
            )
    return accounts, rejects


def connectors_of(raw_connections: list[dict]) -> dict[int, PowensConnector]:
    """Each connection's connector; a malformed connection fails the call, as Powens broke
    its own contract."""
    connectors = {}
    for raw in raw_connections:
        try:
            connection = parse_connection(raw)
        except PowensParseError as exc:
            raise PowensInvalidResponseError(
                f"malformed record ({exc})", operation="list connections"
            ) from None
        if connection.connector:
            connectors[connection.id] = connection.connector
    return connectors


def resolve_known_accounts(
    conn: duckdb.DuckDBPyConnection, ctx: SyncContext, accounts: list[PowensAccount]
) -> AccountResolution:
    """Powens accounts matched with the canonical accounts the ledger already knows."""
    aliases, identities = known_account_identities(conn, ctx.tenant_id, ctx.connection_id)
    return resolve_accounts(accounts, ctx, aliases, identities)
