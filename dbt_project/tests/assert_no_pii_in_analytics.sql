{{ config(meta={'dagster': {'ref': {'name': 'dim_accounts'}}}) }}
-- No text published in analytics may contain an IBAN, account number, wording or counterparty
-- found in the ledger.
with pii as (
    {{ ledger_pii_values() }}
),
exposed as (
    select account_alias as value from {{ ref('dim_accounts') }}
    union select account_type from {{ ref('dim_accounts') }}
    union select ownership from {{ ref('dim_accounts') }}
    union select category from {{ ref('fct_daily_category_flows') }}
    union select category from {{ ref('fct_category_breakdown') }}
)
select e.value
from exposed e
join pii p on length(p.value) >= 5 and contains(lower(e.value), lower(p.value))
