-- New quarantine rows from the registered batch `_quarantine_batch` (ids are content keys: a bad
-- record seen again is not a new row).
INSERT INTO ledger.quarantine (id, load_id, stream, tenant_id, connection_id, external_id,
                               reasons, record, quarantined_at, fault)
SELECT DISTINCT ON (id) id, $load_id, $stream, $tenant_id, $connection_id, external_id,
       reasons::JSON, record::JSON, $now, fault
FROM _quarantine_batch b
WHERE NOT EXISTS (SELECT 1 FROM ledger.quarantine q WHERE q.id = b.id)
