{#
  Every sensitive text the ledger holds (IBAN, account number, account name, wording,
  counterparty name and account), one per row as `value`: what the PII tests look for in
  published marts.
#}
{% macro ledger_pii_values() %}
    select iban as value from {{ source('ledger', 'bank_accounts') }}
    union select replace(account_number_masked, '*', '') from {{ source('ledger', 'bank_accounts') }}
    union select display_name from {{ source('ledger', 'bank_accounts') }}
    union select description from {{ source('ledger', 'bank_transactions') }}
    union select counterparty_name from {{ source('ledger', 'bank_transactions') }}
    union select counterparty_account from {{ source('ledger', 'bank_transactions') }}
{% endmacro %}
