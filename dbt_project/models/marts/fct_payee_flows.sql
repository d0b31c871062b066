{{ config(meta={'dagster': {'group': 'insights'}}) }}
-- Monthly money in and out per payee (business name or opaque key), category and currency.
select
    tenant_id,
    date_trunc('month', day)::date as month,
    payee_key,
    payee_label,
    is_business,
    category,
    currency,
    sum(case when amount > 0 then amount else 0 end)::decimal(18, 2) as inflow,
    sum(case when amount < 0 then -amount else 0 end)::decimal(18, 2) as outflow,
    count(*) as transaction_count
from {{ ref('fct_payee_transactions') }}
where status = 'booked'
group by all
