"""`openbanking.balances.refresh`: a snapshot of every live account's balance, dated by Powens'
last sync of the account; one load. An account the accounts sync has not seen yet is held back
in quarantine, never invented here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from pfo_pipeline.ledger.accounts_load import known_account_identities
from pfo_pipeline.ledger.balances_load import apply_balances
from pfo_pipeline.ledger.loads import fail_load, start_load
from pfo_pipeline.ledger.mapping import map_balances
from pfo_pipeline.ledger.records import AccountBalanceRecord
from pfo_pipeline.ledger.types import FAULT_HELD_BACK, LoadStats, Reject, SyncContext
from pfo_pipeline.ledger.validation import validate_batch
from pfo_pipeline.operations.accounts_sync import parse_accounts, resolve_known_accounts
from pfo_pipeline.operations.sync_context import PARIS, load_metadata, utc_now
from pfo_pipeline.powens.client import PowensClient


@dataclass
class BalancesRefreshResult:
    refreshed: int
    failed: int
    load_id: str
    as_of_date: date
    refreshed_at: datetime
    stats: LoadStats
    errors: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """What the materialisation shows."""
        return {
            **load_metadata(self.load_id, self.stats),
            "as_of_date": self.as_of_date.isoformat(),
        }

    def telemetry(self) -> dict[str, Any]:
        """The `openbanking.balances.refreshed` event's own properties."""
        return {
            "refreshed_count": self.refreshed,
            "failed_count": self.failed,
            "balance_types": ["current"],
            "refreshed_at": self.refreshed_at.isoformat(),
            "as_of_date": self.as_of_date.isoformat(),
        }


def refresh_balances(
    conn: duckdb.DuckDBPyConnection,
    client: PowensClient,
    ctx: SyncContext,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> BalancesRefreshResult:
    """One balances load (`as_of` dates accounts Powens never synced; default: today in Paris)."""
    now = now or utc_now()
    as_of = as_of or now.astimezone(PARIS).date()
    start_load(conn, ctx, "balances", "snapshot", now)
    try:
        accounts, rejects = parse_accounts(client.list_accounts(include_disabled=True))
        resolution = resolve_known_accounts(conn, ctx, accounts)
        aliases, _ = known_account_identities(conn, ctx.tenant_id, ctx.connection_id)
        known = set(aliases.values())
        unknown = [a for a in accounts if resolution.by_powens_id[a.id] not in known]
        rejects += [
            Reject(
                str(a.id),
                ("account_id: account not synced yet; held back until the accounts sync",),
                {"id": a.id},
                FAULT_HELD_BACK,
            )
            for a in unknown
        ]
        for account in unknown:
            resolution.representatives.pop(resolution.by_powens_id[account.id], None)
        frame, balance_rejects = map_balances(resolution, ctx, as_of)
        valid, invalid = validate_batch(AccountBalanceRecord, frame, conn)
        rejects += balance_rejects + invalid
        stats = apply_balances(conn, ctx, valid, rejects, now)
    except Exception as exc:
        fail_load(conn, ctx.load_id, str(exc), utc_now())
        raise
    days = list(valid["as_of_date"]) if not valid.empty else []
    return BalancesRefreshResult(
        refreshed=len(valid),
        failed=len(rejects),
        load_id=ctx.load_id,
        as_of_date=max(days) if days else as_of,
        refreshed_at=now,
        stats=stats,
        errors=[f"{r.external_id}: {'; '.join(r.reasons)}" for r in rejects],
    )
