-- Rows paid to or from one of the tenant's own IBANs are internal transfers too, even without a
-- pair (added to _transfer_marks once every chunk's pairs are in).
INSERT INTO _transfer_marks
WITH own AS (
    SELECT id, iban FROM ledger.bank_accounts WHERE tenant_id = $tenant AND account_type <> 'loan'
)
SELECT t.id, NULL FROM ledger.bank_transactions t
JOIN own o ON o.id = t.account_id
WHERE t.tenant_id = $tenant AND t.status <> 'cancelled' AND t.category_source <> 'user'
  AND replace(upper(t.counterparty_account), ' ', '') IN (
      SELECT replace(upper(iban), ' ', '') FROM own WHERE iban IS NOT NULL)
  AND t.id NOT IN (SELECT id FROM _transfer_marks)
