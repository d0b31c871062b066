-- Accounts without any PII: no IBAN, BIC, number or display name (names can be personal).
select
    id as account_id,
    external_id as powens_account_id,
    tenant_id,
    account_type,
    currency,
    status,
    ownership,
    parent_account_id,
    created_at
from {{ source('ledger', 'bank_accounts') }}
