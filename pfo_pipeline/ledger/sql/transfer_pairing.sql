-- Mark the legs found by transfer_marks.sql that do not carry their mark yet; only rows dated in
-- [$from, $to] (those legs' dates) are looked up, so the scan can skip the rest of the history.
UPDATE ledger.bank_transactions t
SET standardized_category = 'internal_transfer', category_source = 'transfer', transfer_pair_id = m.pair_id
FROM _transfer_marks m
WHERE m.stale AND t.id = m.id AND t.date >= $from AND t.date <= $to
  AND (t.standardized_category IS DISTINCT FROM 'internal_transfer'
       OR t.category_source IS DISTINCT FROM 'transfer'
       OR t.transfer_pair_id IS DISTINCT FROM m.pair_id)
