"""A durable, idempotent inbox of accepted webhook events, in its own SQLite file.

The receiver must answer fast and must not fight the ledger's single DuckDB writer, so accepted
events go to SQLite (WAL, one short transaction each). Only what the sensor needs is kept: event
type, tenant, connection and Powens ids; never the raw body, which carries IBANs and wordings.
A Powens re-delivery of the same body is recognised by its hash and not recorded twice.
Bank-connect `state`s expire (DEFAULT_STATE_TTL) so a leaked webview URL is not good forever.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pfo_pipeline.sql_files import load_sql

INBOX_PATH_ENV = "PFO_WEBHOOK_INBOX"
DEFAULT_INBOX = "data/webhook_inbox.sqlite3"
# A user finishes the Powens webview in minutes; a state older than this is refused.
DEFAULT_STATE_TTL = timedelta(minutes=15)


def _utc(stamp: str) -> datetime:
    """A stored timestamp as an aware UTC datetime (a hand-edited naive one is taken as UTC)."""
    parsed = datetime.fromisoformat(stamp)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def inbox_path() -> Path:
    return Path(os.environ.get(INBOX_PATH_ENV) or DEFAULT_INBOX)


@dataclass(frozen=True)
class InboxEvent:
    seq: int
    event_key: str
    received_at: str
    tenant_id: str
    connection_id: str
    event_type: str
    summary: dict[str, Any]


class Inbox:
    """Thread-safe; each write is one short SQLite transaction."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or inbox_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(load_sql(__name__, "inbox_schema"))

    def close(self) -> None:
        self._conn.close()

    def record(
        self,
        tenant_id: str,
        connection_id: str,
        event_type: str,
        body: bytes,
        summary: dict[str, Any],
    ) -> bool:
        """Store an accepted event; False when this exact delivery was already recorded."""
        key = hashlib.sha256(f"{connection_id}|{event_type}|".encode() + body).hexdigest()
        with self._lock:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO webhook_events "
                "(event_key, received_at, tenant_id, connection_id, event_type, summary) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, datetime.now(UTC).isoformat(), tenant_id, connection_id, event_type,
                 orjson.dumps(summary).decode()),
            )  # fmt: skip
        return cursor.rowcount == 1

    def events_after(self, seq: int, limit: int = 500) -> list[InboxEvent]:
        return self._events("seq > ? ORDER BY seq LIMIT ?", [seq, limit])

    def events_by_seq(self, seqs: list[int]) -> list[InboxEvent]:
        """The events with these sequence numbers, in order (missing ones are simply absent)."""
        if not seqs:
            return []
        marks = ", ".join("?" for _ in seqs)
        return self._events(f"seq IN ({marks}) ORDER BY seq", list(seqs))

    def _events(self, where: str, params: list[Any]) -> list[InboxEvent]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, event_key, received_at, tenant_id, connection_id, event_type, summary "
                f"FROM webhook_events WHERE {where}",
                params,
            ).fetchall()
        return [InboxEvent(*row[:6], orjson.loads(row[6])) for row in rows]

    def count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0]

    def new_connect_state(self, tenant_id: str) -> str:
        state = hashlib.sha256(os.urandom(32)).hexdigest()[:32]
        with self._lock:
            self._conn.execute(
                "INSERT INTO connect_states VALUES (?, ?, ?, NULL)",
                (state, tenant_id, datetime.now(UTC).isoformat()),
            )
        return state

    def use_connect_state(
        self, state: str, max_age: timedelta = DEFAULT_STATE_TTL, *, now: datetime | None = None
    ) -> str | None:
        """The tenant a connect `state` was issued for, if it is unused and younger than `max_age`.

        Each state works once: it is used up here, so call this only for a callback being accepted.
        """
        now = now or datetime.now(UTC)
        with self._lock:
            row = self._conn.execute(
                "SELECT tenant_id, created_at FROM connect_states WHERE state = ? AND used_at IS NULL",
                (state,),
            ).fetchone()
            if row is None or now - _utc(row[1]) > max_age:
                return None
            # `used_at IS NULL` again: another process may have used it since the SELECT.
            cursor = self._conn.execute(
                "UPDATE connect_states SET used_at = ? WHERE state = ? AND used_at IS NULL",
                (now.isoformat(), state),
            )
        return row[0] if cursor.rowcount == 1 else None
