-- A load's outcome, written in the same transaction as the rows it covers.
UPDATE ledger.loads
SET status = 'succeeded', finished_at = $now,
    rows_in = $rows_in, upserted = $upserted, unchanged = $unchanged,
    quarantined = $quarantined, tombstoned = $tombstoned,
    window_start = $window_start, window_end = $window_end,
    cursor_before = $cursor_before, cursor_after = $cursor_after,
    upstream_moved = $upstream_moved, cursor_held = $cursor_held, held_back = $held_back,
    quarantine_resolved = $quarantine_resolved
WHERE load_id = $load_id
