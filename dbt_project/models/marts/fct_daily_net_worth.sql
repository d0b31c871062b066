{{ config(meta={'dagster': {'group': 'insights'}}) }}
-- Per tenant, day and currency: assets (every account that is not a liability), liabilities
-- (loans and cards, as negative balances) and liquid balances (checking and savings). Only days
-- every account of that currency has a balance for are complete (`accounts` says how many had).
-- Currencies are never added here: the overview converts with a stated rate.
select
    b.tenant_id,
    b.day,
    b.currency,
    sum(case when not (a.is_liability or a.account_type = 'card') then b.balance else 0 end)::decimal(18, 2) as assets,
    sum(case when a.is_liability or a.account_type = 'card' then b.balance else 0 end)::decimal(18, 2) as liabilities,
    sum(b.balance)::decimal(18, 2) as net_worth,
    sum(case when a.account_type in ('checking', 'savings', 'deposit') then b.balance else 0 end)::decimal(18, 2) as liquid,
    count(*) as accounts
from {{ ref('fct_daily_balances') }} b
join {{ ref('dim_accounts') }} a using (account_id)
group by all
