{{ config(meta={'dagster': {'group': 'insights'}}) }}
-- One row per transaction that moved money (not cancelled, not on a liability), with its payee
-- as a business name, an own-account alias, "individual" or "unlisted payee", and an opaque
-- payee key: what recurring-commitment and anomaly detection read. No wording, counterparty or
-- IBAN. Internal transfers stay (transfers to savings are commitments too).
select
    t.tenant_id,
    t.id as transaction_id,
    t.account_id,
    a.account_alias,
    a.account_type,
    t.date as day,
    t.amount,
    t.currency,
    t.standardized_category as category,
    t.transaction_type,
    t.status,
    p.payee_key,
    p.payee_label,
    p.is_business,
    try_cast(json_extract_string(t.metadata, '$.original_value') as decimal(18, 2)) as original_value,
    json_extract_string(t.metadata, '$.original_currency') as original_currency
from {{ source('ledger', 'bank_transactions') }} t
join {{ ref('dim_accounts') }} a on a.account_id = t.account_id
join {{ ref('int_transaction_payees') }} p on p.transaction_id = t.id
where t.status <> 'cancelled'
  and not a.is_liability
