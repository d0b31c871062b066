-- The IBANs of a tenant's own (non-loan) accounts, spaces removed and upper-cased: payments to or
-- from them are internal transfers (transfer_legs.sql notes them on each leg).
SELECT coalesce(list(DISTINCT replace(upper(iban), ' ', '')), [])
FROM ledger.bank_accounts
WHERE tenant_id = $tenant AND account_type <> 'loan' AND iban IS NOT NULL
