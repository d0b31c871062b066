-- A tenant's transfer legs dated in [$read_from, $read_to): its rows on its own non-loan accounts,
-- neither cancelled nor overridden by the user, with whether each carries the mark already and
-- whether it was paid to or from one of the own IBANs ($ibans, transfer_own_ibans.sql: a constant
-- list, since a subquery of the few IBANs was planned with the history's side of its join held in
-- memory). transfers.py copies a range's legs (with its margins) to a local Parquet file once;
-- its chunks pair them from there (transfer_marks.sql) and the own-IBAN marks come from it too
-- (transfer_iban_marks.sql): in the load's transaction, each query over the rows that transaction
-- wrote kept about 1.3 MB (5M rows) until the commit, so a full load's pairing grew with the
-- history twice over (more chunks, more kept by each).
WITH own AS (
    SELECT id FROM ledger.bank_accounts WHERE tenant_id = $tenant AND account_type <> 'loan'
)
SELECT t.id, t.account_id, t.amount, t.currency, t.date,
       t.standardized_category IS NOT DISTINCT FROM 'internal_transfer'
       AND t.category_source IS NOT DISTINCT FROM 'transfer' AS marked,
       t.transfer_pair_id,
       coalesce(list_contains(CAST($ibans AS VARCHAR[]),
                              replace(upper(t.counterparty_account), ' ', '')), false) AS own_iban
FROM ledger.bank_transactions t JOIN own o ON o.id = t.account_id
WHERE t.tenant_id = $tenant AND t.status <> 'cancelled' AND t.category_source <> 'user'
  AND t.date >= $read_from AND t.date < $read_to
