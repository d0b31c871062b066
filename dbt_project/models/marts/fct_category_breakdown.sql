select
    tenant_id,
    date_trunc('month', day)::date as month,
    category,
    currency,
    sum(inflow)::decimal(18, 2) as inflow,
    sum(outflow)::decimal(18, 2) as outflow,
    sum(transaction_count) as transaction_count
from {{ ref('fct_daily_category_flows') }}
group by all
