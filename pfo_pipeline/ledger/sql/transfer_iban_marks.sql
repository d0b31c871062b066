-- Rows dated in [$from, $to) paid to or from one of the tenant's own IBANs are internal transfers
-- too, even without a pair (added to _transfer_marks once every chunk's pairs are in).
INSERT INTO _transfer_marks
WITH own AS (
    SELECT id, iban FROM ledger.bank_accounts WHERE tenant_id = $tenant AND account_type <> 'loan'
)
SELECT t.id, NULL, t.date,
       t.standardized_category IS DISTINCT FROM 'internal_transfer'
       OR t.category_source IS DISTINCT FROM 'transfer' OR t.transfer_pair_id IS NOT NULL
FROM ledger.bank_transactions t
JOIN own o ON o.id = t.account_id
WHERE t.tenant_id = $tenant AND t.status <> 'cancelled' AND t.category_source <> 'user'
  AND t.date >= $from AND t.date < $to
  AND replace(upper(t.counterparty_account), ' ', '') IN (
      SELECT replace(upper(iban), ' ', '') FROM own WHERE iban IS NOT NULL)
  AND t.id NOT IN (SELECT id FROM _transfer_marks)
