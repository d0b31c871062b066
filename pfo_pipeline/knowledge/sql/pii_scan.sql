-- Every sensitive value of the ledger (IBAN, account number, counterparty, wording; 5+ characters)
-- found in any text of the knowledge space, for one tenant or all (tenant NULL). Returns the
-- entry, the kind of value and its last 4 characters only. Public business names (the merchant
-- directory, $businesses as one regex) are blanked first: a business is not personal data.
WITH pii AS (
    SELECT DISTINCT kind, value FROM (
        SELECT 'iban' AS kind, replace(iban, ' ', '') AS value, tenant_id FROM ledger.bank_accounts
        UNION ALL SELECT 'account_number', replace(account_number_masked, '*', ''), tenant_id FROM ledger.bank_accounts
        UNION ALL SELECT 'counterparty_name', counterparty_name, tenant_id FROM ledger.bank_transactions
        UNION ALL SELECT 'counterparty_account', counterparty_account, tenant_id FROM ledger.bank_transactions
        UNION ALL SELECT 'description', description, tenant_id FROM ledger.bank_transactions
    )
    WHERE length(value) >= 5 AND ($tenant IS NULL OR tenant_id = $tenant)
),
raw_texts AS (
    SELECT entry_id, markdown AS text FROM knowledge.financial_overview
    WHERE $tenant IS NULL OR tenant_id = $tenant
    UNION ALL SELECT entry_id, CAST(summary AS VARCHAR) FROM knowledge.financial_overview
    WHERE $tenant IS NULL OR tenant_id = $tenant
    UNION ALL SELECT entry_id, content FROM knowledge.financial_overview_chunks
    WHERE $tenant IS NULL OR tenant_id = $tenant
),
texts AS (
    SELECT entry_id, regexp_replace(lower(text), $businesses, ' ~ ', 'g') AS text FROM raw_texts
)
SELECT DISTINCT t.entry_id, p.kind, right(p.value, 4) AS suffix
FROM texts t JOIN pii p ON contains(t.text, lower(p.value))
ORDER BY 1, 2, 3
