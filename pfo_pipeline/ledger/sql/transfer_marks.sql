-- The internal-transfer pairs whose debit leg is dated in [$start, $stop): each leg with its pair,
-- its date and whether its row does not carry the mark yet (transfers.py gathers every chunk's
-- marks in Arrow and applies them at once: DuckLake cannot UPDATE a table from a CTE over its own
-- uncommitted rows, "Out of buffer", and a temp table written once a chunk in the load's
-- transaction kept ~150 KB a chunk until the commit).
-- A pair is a debit and a credit of the same amount and currency on two own accounts within 3
-- days, each the other's nearest. A debit's candidates lie within 3 days of it, and its
-- credits' own candidates within 6: legs dated 6 days either side of the chunk give every pair
-- of the chunk exactly as the whole history would.
WITH legs AS (
    -- the chunk and 6 days either side, from the range's legs (transfer_legs.sql)
    SELECT * FROM read_parquet($legs) WHERE date >= $read_from AND date < $read_to
),
candidates AS (
    SELECT d.id AS debit_id, d.date AS debit_date, c.id AS credit_id, c.date AS credit_date,
           abs(date_diff('day', d.date, c.date)) AS gap,
           d.marked AS debit_marked, d.transfer_pair_id AS debit_pair,
           c.marked AS credit_marked, c.transfer_pair_id AS credit_pair
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
    SELECT *, md5(least(debit_id, credit_id) || '|' || greatest(debit_id, credit_id)) AS pair_id
    FROM ranked
    WHERE by_debit = 1 AND by_credit = 1 AND debit_date >= $start AND debit_date < $stop
)
SELECT debit_id, pair_id, debit_date, NOT debit_marked OR debit_pair IS DISTINCT FROM pair_id
FROM pairs
UNION ALL
SELECT credit_id, pair_id, credit_date, NOT credit_marked OR credit_pair IS DISTINCT FROM pair_id
FROM pairs
