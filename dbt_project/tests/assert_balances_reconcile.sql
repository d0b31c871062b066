{{ config(meta={'dagster': {'ref': {'name': 'fct_daily_balances'}}}) }}
-- Reconciliation: a snapshot day shows exactly its snapshot, and within one anchor segment the
-- day-to-day change of the reconstructed balance equals that day's booked transactions.
with days as (
    select
        b.*,
        lag(balance) over (partition by account_id order by day) as previous_balance,
        lag(anchor_date) over (partition by account_id order by day) as previous_anchor
    from {{ ref('fct_daily_balances') }} b
),
flows as (
    select account_id, transaction_date as day, sum(amount) as amount
    from {{ ref('stg_bank_transactions') }}
    where status = 'booked'
    group by all
)
select d.account_id, d.day, d.balance, d.previous_balance, coalesce(f.amount, 0) as booked
from days d
left join flows f on f.account_id = d.account_id and f.day = d.day
left join {{ ref('stg_account_balances') }} s on s.account_id = d.account_id and s.as_of_date = d.day
where (d.is_snapshot and d.balance <> s.current_balance)
   or (d.previous_anchor = d.anchor_date and not d.is_snapshot
       and abs(d.balance - d.previous_balance - coalesce(f.amount, 0)) > 0.005)
