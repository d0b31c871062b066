-- Transactions without any PII: no description, counterparty, MCC or raw metadata.
select
    id as transaction_id,
    account_id,
    tenant_id,
    amount,
    currency,
    direction,
    date as transaction_date,
    status,
    standardized_category as category,
    transaction_type,
    booked_at,
    deleted_at,
    twin_of_id,
    transfer_pair_id
from {{ source('ledger', 'bank_transactions') }}
