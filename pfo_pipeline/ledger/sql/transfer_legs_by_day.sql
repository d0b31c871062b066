-- How many transfer legs (see transfer_marks.sql) a tenant has on each day of [$from, $to): the
-- days are cut into chunks of a bounded number of legs.
SELECT t.date, count(*) AS legs
FROM ledger.bank_transactions t
JOIN ledger.bank_accounts o ON o.id = t.account_id AND o.tenant_id = $tenant AND o.account_type <> 'loan'
WHERE t.tenant_id = $tenant AND t.status <> 'cancelled' AND t.category_source <> 'user'
  AND t.date >= $from AND t.date < $to
GROUP BY t.date
ORDER BY t.date
