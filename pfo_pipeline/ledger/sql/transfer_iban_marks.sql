-- Rows dated in [$from, $to) paid to or from one of the tenant's own IBANs are internal transfers
-- too, even without a pair: their marks, as transfer_marks.sql gives them, once every chunk's
-- pairs are in (_transfer_pairs).
WITH own AS (
    SELECT id FROM ledger.bank_accounts WHERE tenant_id = $tenant AND account_type <> 'loan'
)
SELECT t.id, NULL::VARCHAR AS pair_id, t.date,
       t.standardized_category IS DISTINCT FROM 'internal_transfer'
       OR t.category_source IS DISTINCT FROM 'transfer' OR t.transfer_pair_id IS NOT NULL
FROM ledger.bank_transactions t
JOIN own o ON o.id = t.account_id
WHERE t.tenant_id = $tenant AND t.status <> 'cancelled' AND t.category_source <> 'user'
  AND t.date >= $from AND t.date < $to
  -- $ibans (transfer_own_ibans.sql) is a constant list: a subquery of the few IBANs, as an IN
  -- or a list, was planned with the history's side of its join held in memory.
  AND list_contains(CAST($ibans AS VARCHAR[]), replace(upper(t.counterparty_account), ' ', ''))
  AND t.id NOT IN (SELECT id FROM _transfer_pairs)
