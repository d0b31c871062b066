-- Accounts as analysts and the overview may name them: an alias such as "checking 1" (type and an
-- ordinal within the tenant, by creation) instead of any IBAN, number or owner name.
select
    account_id,
    tenant_id,
    account_type || ' ' || row_number() over (
        partition by tenant_id, account_type
        order by created_at, try_cast(powens_account_id as bigint), account_id
    ) as account_alias,
    account_type,
    currency,
    status,
    ownership,
    parent_account_id,
    account_type = 'loan' as is_liability
from {{ ref('stg_bank_accounts') }}
