-- One row per account and day, from its first known day to its latest snapshot. Powens keeps no
-- balance history: a snapshot day shows the snapshot; any other day d is reconstructed backwards
-- from the next snapshot S: balance(d) = snapshot(S) - the booked amounts dated in (d, S] that S
-- already contained. "Contained" follows Powens' own clock: booked at or before the snapshot's
-- `last_updated_at` and not deleted by then, so a pending row booked after S (even if dated
-- earlier) never skews the days before S. `gap_days` says how far the reconstruction reached.
-- Days after the latest snapshot are not guessed.
with snapshots as (
    select
        account_id,
        as_of_date,
        current_balance,
        coalesce(last_updated_at, timestamp '9999-12-31') as snapshot_clock,
        lag(as_of_date) over (partition by account_id order by as_of_date) as previous_snapshot
    from {{ ref('stg_account_balances') }}
),
ever_booked as (
    select account_id, transaction_date as day, amount, booked_at, deleted_at
    from {{ ref('stg_bank_transactions') }}
    where booked_at is not null
),
segment_flows as (
    -- each snapshot's segment of days (previous snapshot, this snapshot], with the flows it contains
    select s.account_id, s.as_of_date as anchor_date, t.day, sum(t.amount) as amount
    from snapshots s
    join ever_booked t
      on t.account_id = s.account_id
     and t.day <= s.as_of_date
     and (s.previous_snapshot is null or t.day > s.previous_snapshot)
     and t.booked_at <= s.snapshot_clock
     and (t.deleted_at is null or t.deleted_at > s.snapshot_clock)
    group by all
),
bounds as (
    select
        a.account_id,
        a.tenant_id,
        a.currency,
        least(min(s.as_of_date), coalesce(min(f.day), min(s.as_of_date))) as first_day,
        max(s.as_of_date) as last_day
    from {{ ref('dim_accounts') }} a
    join snapshots s on s.account_id = a.account_id
    left join segment_flows f on f.account_id = a.account_id
    group by all
),
days as (
    select account_id, tenant_id, currency,
           unnest(generate_series(first_day, last_day, interval 1 day))::date as day
    from bounds
),
anchored as (
    -- the anchor of a day is the first snapshot on or after it
    select d.*, min(s.as_of_date) as anchor_date
    from days d
    join snapshots s on s.account_id = d.account_id and s.as_of_date >= d.day
    group by all
),
daily as (
    select a.*, coalesce(f.amount, 0) as amount
    from anchored a
    left join segment_flows f
      on f.account_id = a.account_id and f.anchor_date = a.anchor_date and f.day = a.day
),
reconstructed as (
    select
        d.*,
        s.current_balance as anchor_balance,
        -- the anchor segment's flows dated after this day
        coalesce(sum(d.amount) over (
            partition by d.account_id, d.anchor_date order by d.day desc
            rows between unbounded preceding and 1 preceding
        ), 0) as later_flows
    from daily d
    join snapshots s on s.account_id = d.account_id and s.as_of_date = d.anchor_date
)
select
    tenant_id,
    account_id,
    day,
    currency,
    (anchor_balance - later_flows)::decimal(18, 2) as balance,
    day = anchor_date as is_snapshot,
    case when day = anchor_date then 'snapshot' else 'reconstructed' end as source,
    anchor_date,
    date_diff('day', day, anchor_date) as gap_days
from reconstructed
