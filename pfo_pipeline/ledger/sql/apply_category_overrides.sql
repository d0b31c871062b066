-- Every override of a tenant onto its transactions (set-based); rows that already carry
-- the user's category are left untouched, so running it again changes nothing.
UPDATE ledger.bank_transactions t
SET standardized_category = o.category, category_source = 'user', transfer_pair_id = NULL
FROM ledger.category_overrides o
WHERE o.tenant_id = $tenant AND t.tenant_id = o.tenant_id AND t.id = o.transaction_id
  AND (t.standardized_category IS DISTINCT FROM o.category OR t.category_source <> 'user')
