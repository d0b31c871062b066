-- Link the booked rows of _twin_links to their pending rows; only rows dated in [$from, $to]
-- (those booked rows' dates) are looked up, so the scan can skip the rest of the history.
UPDATE ledger.bank_transactions t SET twin_of_id = l.pending_id
FROM _twin_links l
WHERE t.id = l.booked_id AND t.date >= $from AND t.date <= $to
