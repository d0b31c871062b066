{{ config(materialized='ephemeral') }}
-- The rows that are real money in or out of the family: not cancelled (a deleted pending row's
-- booked twin carries the money once), not an internal transfer between own accounts, not on a
-- liability (the mortgage instalment is counted once, as housing, on the paying account).
select
    t.tenant_id,
    t.transaction_date as day,
    t.currency,
    t.category,
    t.amount,
    t.status = 'pending' as is_pending
from {{ ref('stg_bank_transactions') }} t
join {{ ref('dim_accounts') }} a on a.account_id = t.account_id
where t.status <> 'cancelled'
  and t.category <> 'internal_transfer'
  and not a.is_liability
