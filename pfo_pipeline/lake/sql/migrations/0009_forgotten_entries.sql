-- Migration 9: which expired overview entries had their text forgotten from the lake's history,
-- and when (ids only). Each forgetting pass that rewrote anything commits its rows here: the new
-- snapshot also makes every process read the rewritten files' new sizes from the catalog.
CREATE TABLE knowledge.forgotten_entries (
    entry_id VARCHAR NOT NULL,
    forgotten_at TIMESTAMPTZ NOT NULL
);
