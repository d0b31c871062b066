-- Loads of this tenant, connection and stream still marked running when a new one starts: the
-- process that ran them ended before they committed.
UPDATE ledger.loads
SET status = 'abandoned', finished_at = $now, error = 'process ended before the load committed'
WHERE tenant_id = $tenant_id AND connection_id = $connection_id AND stream = $stream
  AND status = 'running'
