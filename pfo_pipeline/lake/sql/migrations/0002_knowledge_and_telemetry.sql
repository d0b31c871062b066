-- Migration 2: the knowledge space (overview entries and their chunks), telemetry events, and
-- the schemas dbt builds into.

CREATE SCHEMA IF NOT EXISTS knowledge;
CREATE TABLE knowledge.financial_overview (
    entry_id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL,
    period VARCHAR NOT NULL,
    period_start DATE NOT NULL,
    period_end DATE NOT NULL,
    generated_at TIMESTAMPTZ NOT NULL,
    expires_at DATE NOT NULL,
    content_hash VARCHAR NOT NULL,
    markdown VARCHAR NOT NULL,
    summary JSON NOT NULL
);
CREATE TABLE knowledge.financial_overview_chunks (
    chunk_id VARCHAR NOT NULL,
    entry_id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL,
    chunk_index INTEGER NOT NULL,
    content VARCHAR NOT NULL,
    token_count INTEGER NOT NULL,
    expires_at DATE NOT NULL
);
CREATE SCHEMA IF NOT EXISTS telemetry;
CREATE TABLE telemetry.events (
    event_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    tenant_id VARCHAR NOT NULL,
    app_id VARCHAR NOT NULL,
    blueprint VARCHAR NOT NULL,
    config_version INTEGER NOT NULL,
    slot_id VARCHAR NOT NULL,
    connection_id VARCHAR NOT NULL,
    properties JSON
);
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS staging;
