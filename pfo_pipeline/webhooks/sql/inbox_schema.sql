-- The webhook inbox (SQLite, not the lake): accepted events, deduplicated by event key, and the
-- one-time `state`s of bank-connection webviews.
CREATE TABLE IF NOT EXISTS webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_key TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connect_states (
    state TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    used_at TEXT
);
