-- Daily cashflow per tenant and currency. Pending rows are included and flagged by the pending_*
-- columns; currencies are never added together.
select
    tenant_id,
    day,
    currency,
    sum(case when amount > 0 then amount else 0 end)::decimal(18, 2) as inflow,
    sum(case when amount < 0 then -amount else 0 end)::decimal(18, 2) as outflow,
    sum(amount)::decimal(18, 2) as net,
    count(*) as transaction_count,
    coalesce(sum(case when is_pending and amount > 0 then amount end), 0)::decimal(18, 2) as pending_inflow,
    coalesce(sum(case when is_pending and amount < 0 then -amount end), 0)::decimal(18, 2) as pending_outflow,
    count(*) filter (where is_pending) as pending_count
from {{ ref('int_cashflow_rows') }}
group by all
