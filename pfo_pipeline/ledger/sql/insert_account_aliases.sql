-- Powens account ids first seen in this load (registered as `_new_aliases`), mapped to their
-- canonical account; an id already known to the connection keeps its first mapping.
INSERT INTO ledger.account_aliases
SELECT $tenant_id, $connection_id, external_id, account_id, identity_key, $now
FROM _new_aliases n
WHERE NOT EXISTS (
    SELECT 1 FROM ledger.account_aliases a
    WHERE a.tenant_id = $tenant_id AND a.connection_id = $connection_id
      AND a.external_id = n.external_id
)
