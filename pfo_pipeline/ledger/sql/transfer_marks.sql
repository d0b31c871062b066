-- Which rows of a tenant are legs of an internal transfer, and their pair id. Computed into
-- a temp table first: DuckLake cannot UPDATE a table from a CTE over its own uncommitted rows
-- ("Out of buffer").
CREATE OR REPLACE TEMP TABLE _transfer_marks AS
WITH own AS (
    SELECT id, iban FROM ledger.bank_accounts WHERE tenant_id = $tenant AND account_type <> 'loan'
),
legs AS (
    SELECT t.id, t.account_id, t.amount, t.currency, t.date
    FROM ledger.bank_transactions t JOIN own o ON o.id = t.account_id
    WHERE t.tenant_id = $tenant AND t.status <> 'cancelled' AND t.category_source <> 'user'
),
candidates AS (
    SELECT d.id AS debit_id, c.id AS credit_id, abs(date_diff('day', d.date, c.date)) AS gap
    FROM legs d JOIN legs c
      ON c.amount = -d.amount AND c.currency = d.currency AND c.account_id <> d.account_id
     AND c.date BETWEEN d.date - INTERVAL 3 DAY AND d.date + INTERVAL 3 DAY
    WHERE d.amount < 0
),
ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY debit_id ORDER BY gap, credit_id) AS by_debit,
        row_number() OVER (PARTITION BY credit_id ORDER BY gap, debit_id) AS by_credit
    FROM candidates
),
pairs AS (
    SELECT debit_id, credit_id, md5(least(debit_id, credit_id) || '|' || greatest(debit_id, credit_id)) AS pair_id
    FROM ranked WHERE by_debit = 1 AND by_credit = 1
),
marked AS (
    SELECT debit_id AS id, pair_id FROM pairs
    UNION ALL SELECT credit_id, pair_id FROM pairs
    UNION ALL
    SELECT t.id, NULL FROM ledger.bank_transactions t
    JOIN own o ON o.id = t.account_id
    WHERE t.tenant_id = $tenant AND t.status <> 'cancelled' AND t.category_source <> 'user'
      AND replace(upper(t.counterparty_account), ' ', '') IN (
          SELECT replace(upper(iban), ' ', '') FROM own WHERE iban IS NOT NULL)
      AND t.id NOT IN (SELECT debit_id FROM pairs UNION ALL SELECT credit_id FROM pairs)
)
SELECT id, pair_id FROM marked
