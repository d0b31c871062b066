-- Mark the legs found by transfer_marks.sql; rows already marked alike are left untouched.
UPDATE ledger.bank_transactions t
SET standardized_category = 'internal_transfer', category_source = 'transfer', transfer_pair_id = m.pair_id
FROM _transfer_marks m
WHERE t.id = m.id
  AND (t.standardized_category IS DISTINCT FROM 'internal_transfer'
       OR t.category_source IS DISTINCT FROM 'transfer'
       OR t.transfer_pair_id IS DISTINCT FROM m.pair_id)
