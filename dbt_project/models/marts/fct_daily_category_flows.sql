-- Daily money in/out per category and currency; the overview sums it over any window.
select
    tenant_id,
    day,
    category,
    currency,
    sum(case when amount > 0 then amount else 0 end)::decimal(18, 2) as inflow,
    sum(case when amount < 0 then -amount else 0 end)::decimal(18, 2) as outflow,
    sum(amount)::decimal(18, 2) as net,
    count(*) as transaction_count,
    count(*) filter (where is_pending) as pending_count
from {{ ref('int_cashflow_rows') }}
group by all
