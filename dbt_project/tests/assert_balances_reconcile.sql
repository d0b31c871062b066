{{ config(meta={'dagster': {'ref': {'name': 'fct_daily_balances'}}}) }}
-- Reconciliation: a snapshot day shows exactly its snapshot, and inside one anchor segment the
-- day-to-day change of the reconstructed balance equals that day's booked transactions as the
-- anchor snapshot saw them (booked by its clock, not deleted by then).
with days as (
    select
        b.*,
        lag(balance) over (partition by account_id order by day) as previous_balance,
        lag(anchor_date) over (partition by account_id order by day) as previous_anchor
    from {{ ref('fct_daily_balances') }} b
),
snapshots as (
    select account_id, as_of_date, current_balance,
           coalesce(last_updated_at, timestamp '9999-12-31') as clock
    from {{ ref('stg_account_balances') }}
),
seen as (
    select d.account_id, d.day, coalesce(sum(t.amount), 0) as booked
    from days d
    join snapshots s on s.account_id = d.account_id and s.as_of_date = d.anchor_date
    left join {{ ref('stg_bank_transactions') }} t
      on t.account_id = d.account_id and t.transaction_date = d.day
     and t.booked_at <= s.clock and (t.deleted_at is null or t.deleted_at > s.clock)
    group by all
)
select d.account_id, d.day, d.balance, d.previous_balance, n.booked
from days d
join seen n on n.account_id = d.account_id and n.day = d.day
left join snapshots s on s.account_id = d.account_id and s.as_of_date = d.day
where (d.is_snapshot and d.balance <> s.current_balance)
   or (d.previous_anchor = d.anchor_date and abs(d.balance - d.previous_balance - n.booked) > 0.005)
