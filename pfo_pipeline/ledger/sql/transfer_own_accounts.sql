-- A signature of what pairing reads of a tenant's accounts: which are its own (non-loan) accounts
-- and their IBANs. Another signature than the last pairing's means another set of legs.
SELECT md5(coalesce(string_agg(
    id || '|' || coalesce(replace(upper(iban), ' ', ''), ''), ',' ORDER BY id), ''))
FROM ledger.bank_accounts
WHERE tenant_id = $tenant AND account_type <> 'loan'
