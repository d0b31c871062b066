-- One row per account and day, from its first known day to its latest snapshot. Powens keeps no
-- balance history: a snapshot day shows the snapshot; any other day is reconstructed backwards
-- from the next snapshot: balance(d) = snapshot(S) - booked amounts dated in (d, S]. `gap_days`
-- says how far the reconstruction had to reach. Days after the latest snapshot are not guessed.
with snapshots as (
    select account_id, as_of_date, current_balance
    from {{ ref('stg_account_balances') }}
),
booked as (
    select account_id, transaction_date as day, sum(amount) as amount
    from {{ ref('stg_bank_transactions') }}
    where status = 'booked'
    group by all
),
first_booked as (
    select account_id, min(day) as first_day from booked group by all
),
bounds as (
    select
        a.account_id,
        a.tenant_id,
        a.currency,
        least(min(s.as_of_date), coalesce(f.first_day, min(s.as_of_date))) as first_day,
        max(s.as_of_date) as last_day
    from {{ ref('dim_accounts') }} a
    join snapshots s on s.account_id = a.account_id
    left join first_booked f on f.account_id = a.account_id
    group by a.account_id, a.tenant_id, a.currency, f.first_day
),
days as (
    select account_id, tenant_id, currency,
           unnest(generate_series(first_day, last_day, interval 1 day))::date as day
    from bounds
),
daily as (
    select d.*, coalesce(b.amount, 0) as amount, s.current_balance as snapshot
    from days d
    left join booked b on b.account_id = d.account_id and b.day = d.day
    left join snapshots s on s.account_id = d.account_id and s.as_of_date = d.day
),
cumulated as (
    select *, sum(amount) over (partition by account_id order by day rows unbounded preceding) as running
    from daily
),
anchored as (
    select
        *,
        first_value(case when snapshot is not null then day end ignore nulls) over w as anchor_date,
        first_value(snapshot ignore nulls) over w as anchor_balance,
        first_value(case when snapshot is not null then running end ignore nulls) over w as anchor_running
    from cumulated
    window w as (partition by account_id order by day desc rows between unbounded preceding and current row)
)
select
    tenant_id,
    account_id,
    day,
    currency,
    (anchor_balance - (anchor_running - running))::decimal(18, 2) as balance,
    snapshot is not null as is_snapshot,
    case when snapshot is not null then 'snapshot' else 'reconstructed' end as source,
    anchor_date,
    date_diff('day', day, anchor_date) as gap_days
from anchored
