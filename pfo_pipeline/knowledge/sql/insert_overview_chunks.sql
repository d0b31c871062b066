-- The chunks of one overview entry, from the registered Arrow table `_chunks`
-- (chunk_index, content, token_count); chunk ids are the entry id and a 3-digit index.
INSERT INTO knowledge.financial_overview_chunks
SELECT $entry_id || '-' || lpad(CAST(chunk_index AS VARCHAR), 3, '0'), $entry_id, $tenant_id,
       chunk_index, content, token_count, $expires_at
FROM _chunks
