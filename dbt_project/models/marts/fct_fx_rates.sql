{{ config(meta={'dagster': {'group': 'insights'}}) }}
-- Exchange rates observed in Powens data: a row paid in one currency and booked in another
-- (`original_value` / `original_currency`) says 1 original unit = amount / original_value units
-- of the account's currency that day. Averaged per day and pair.
select
    t.tenant_id,
    t.date as day,
    json_extract_string(t.metadata, '$.original_currency') as from_currency,
    t.currency as to_currency,
    avg(abs(t.amount) / abs(try_cast(json_extract_string(t.metadata, '$.original_value') as decimal(18, 4))))::decimal(18, 6) as rate,
    count(*) as observations
from {{ source('ledger', 'bank_transactions') }} t
where t.status <> 'cancelled'
  and json_extract_string(t.metadata, '$.original_currency') is not null
  and json_extract_string(t.metadata, '$.original_currency') <> t.currency
  and try_cast(json_extract_string(t.metadata, '$.original_value') as decimal(18, 4)) <> 0
  and t.amount <> 0
group by all
