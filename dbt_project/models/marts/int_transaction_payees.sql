{{ config(materialized='ephemeral') }}
-- The payee of every transaction, without PII. A business appears by its name in the merchant
-- directory (seed `merchant_directory`, longest keyword found in the wording or counterparty), an
-- own account by its alias, a private person only as "individual" with an opaque key (a hash of
-- the counterparty's IBAN or name), anything else by a hash of its wording without digits.
with tx as (
    select
        id as transaction_id,
        tenant_id,
        nullif(replace(upper(counterparty_account), ' ', ''), '') as counterparty_account,
        nullif(upper(trim(counterparty_name)), '') as counterparty_name,
        ' ' || trim(regexp_replace(
            strip_accents(upper(coalesce(description, '') || ' ' || coalesce(counterparty_name, ''))),
            '[^A-Z0-9]+', ' ', 'g')) || ' ' as text
    from {{ source('ledger', 'bank_transactions') }}
),
texts as (select distinct text from tx),
matched as (
    select x.text, arg_max(m.merchant, length(m.keyword)) as merchant
    from texts x
    join {{ ref('merchant_directory') }} m on contains(x.text, ' ' || m.keyword || ' ')
    group by x.text
),
own as (
    select a.tenant_id, replace(upper(a.iban), ' ', '') as iban, min(d.account_alias) as account_alias
    from {{ source('ledger', 'bank_accounts') }} a
    join {{ ref('dim_accounts') }} d on d.account_id = a.id
    where a.iban is not null
    group by all
)
select
    tx.transaction_id,
    case
        when m.merchant is not null
            then 'm-' || regexp_replace(lower(m.merchant), '[^a-z0-9]+', '-', 'g')
        when o.account_alias is not null then 'a-' || left(md5(tx.tenant_id || '|' || o.iban), 12)
        when coalesce(tx.counterparty_account, tx.counterparty_name) is not null
            then 'p-' || left(md5(tx.tenant_id || '|' || coalesce(tx.counterparty_account, tx.counterparty_name)), 12)
        else 'w-' || left(md5(tx.tenant_id || '|' || trim(regexp_replace(tx.text, '[0-9 ]+', ' ', 'g'))), 12)
    end as payee_key,
    case
        when m.merchant is not null then m.merchant
        when o.account_alias is not null then o.account_alias || ' (own account)'
        when coalesce(tx.counterparty_account, tx.counterparty_name) is not null then 'individual'
        else 'unlisted payee'
    end as payee_label,
    m.merchant is not null as is_business
from tx
left join matched m on m.text = tx.text
left join own o on o.tenant_id = tx.tenant_id and o.iban = tx.counterparty_account
