select
    id as balance_id,
    account_id,
    tenant_id,
    balance_type,
    current_balance,
    available_balance,
    currency,
    last_updated_at,
    as_of_date
from {{ source('ledger', 'account_balances') }}
where balance_type = 'current'
