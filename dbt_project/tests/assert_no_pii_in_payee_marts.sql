{{ config(meta={'dagster': {'ref': {'name': 'fct_payee_transactions'}}}) }}
-- No payee label or key of the insight marts may contain an IBAN, account number, wording or
-- counterparty found in the ledger (a separate test from assert_no_pii_in_analytics so that each
-- Dagster group's build runs only the test of its own marts).
with pii as (
    {{ ledger_pii_values() }}
),
exposed as (
    -- business names come from the public merchant directory; every other payee label is generic
    select payee_label as value from {{ ref('fct_payee_transactions') }} where not is_business
    union select payee_key from {{ ref('fct_payee_transactions') }} where not is_business
)
select e.value
from exposed e
join pii p on length(p.value) >= 5 and contains(lower(e.value), lower(p.value))
