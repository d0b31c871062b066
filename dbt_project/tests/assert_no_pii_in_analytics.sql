{{ config(meta={'dagster': {'ref': {'name': 'dim_accounts'}}}) }}
-- No text published in analytics may contain an IBAN, account number, wording or counterparty
-- found in the ledger.
with pii as (
    select iban as value from {{ source('ledger', 'bank_accounts') }}
    union select replace(account_number_masked, '*', '') from {{ source('ledger', 'bank_accounts') }}
    union select display_name from {{ source('ledger', 'bank_accounts') }}
    union select description from {{ source('ledger', 'bank_transactions') }}
    union select counterparty_name from {{ source('ledger', 'bank_transactions') }}
    union select counterparty_account from {{ source('ledger', 'bank_transactions') }}
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
