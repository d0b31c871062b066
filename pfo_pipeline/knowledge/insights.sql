-- name: recurring_candidates
-- Booked payments of groups that could be a commitment: at most one payment per few days on
-- average over the lookback (a supermarket paid daily is not one), incoming own-account legs out.
WITH rows AS (
    SELECT * FROM analytics.fct_payee_transactions
    WHERE tenant_id = $tenant AND status = 'booked' AND day BETWEEN $since AND $as_of
      AND NOT (category = 'internal_transfer' AND amount > 0) AND amount <> 0
),
groups AS (
    SELECT account_alias, payee_key, currency, amount < 0 AS debit
    FROM rows GROUP BY ALL HAVING count(*) BETWEEN 2 AND $most
)
SELECT r.account_alias, r.payee_key, r.payee_label, r.currency, r.category, r.day, r.amount,
       r.transaction_id
FROM rows r JOIN groups g
  ON g.account_alias = r.account_alias AND g.payee_key = r.payee_key
 AND g.currency = r.currency AND g.debit = (r.amount < 0)
ORDER BY r.account_alias, r.payee_key, r.day, r.transaction_id;

-- name: window_debits
SELECT account_alias, payee_key, payee_label, currency, category, day, amount, transaction_id
FROM analytics.fct_payee_transactions
WHERE tenant_id = $tenant AND day BETWEEN $lead AND $as_of AND amount < 0
  AND category <> 'internal_transfer'
ORDER BY day, transaction_id;

-- name: category_ranges
SELECT currency, category,
       quantile_cont(-amount, 0.5)::DECIMAL(18, 2) AS p50,
       quantile_cont(-amount, 0.95)::DECIMAL(18, 2) AS p95,
       count(*) AS n
FROM analytics.fct_payee_transactions
WHERE tenant_id = $tenant AND amount < 0 AND category <> 'internal_transfer'
  AND day >= $start - INTERVAL 365 DAY AND day < $start
GROUP BY ALL;

-- name: payee_history
-- For each payee paid in the window: its first day ever, and its last day before the window.
WITH window_payees AS (
    SELECT DISTINCT payee_key FROM analytics.fct_payee_transactions
    WHERE tenant_id = $tenant AND day BETWEEN $lead AND $as_of AND amount < 0
)
SELECT t.payee_key, min(t.day) AS first_day, max(t.day) FILTER (WHERE t.day < $lead) AS last_before
FROM analytics.fct_payee_transactions t JOIN window_payees USING (payee_key)
WHERE t.tenant_id = $tenant
GROUP BY 1;

-- name: first_day
SELECT min(day) FROM analytics.fct_payee_transactions WHERE tenant_id = $tenant;

-- name: latest_balances
-- Each account's latest known balance on or before the day.
SELECT a.account_alias, a.account_type, b.currency,
       arg_max(b.balance, b.day) AS balance, max(b.day) AS day
FROM analytics.fct_daily_balances b JOIN analytics.dim_accounts a USING (account_id)
WHERE b.tenant_id = $tenant AND b.day <= $as_of AND a.status <> 'closed'
GROUP BY ALL ORDER BY 1;

-- name: observed_rates
SELECT max(day) AS day, from_currency, to_currency, arg_max(rate, day) AS rate
FROM analytics.fct_fx_rates
WHERE tenant_id = $tenant AND day <= $as_of
GROUP BY 2, 3 ORDER BY 2, 3;

-- name: recent_outflow
SELECT currency, sum(outflow) AS outflow
FROM analytics.fct_daily_cashflow
WHERE tenant_id = $tenant AND day > $as_of - INTERVAL 3 MONTH AND day <= $as_of
GROUP BY 1 ORDER BY 1;
