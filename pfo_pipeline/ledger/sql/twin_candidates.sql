-- Every candidate twin among a tenant's rows dated in [$from, $to), ranked from both sides, into
-- the temp table _twin_candidates: a cancelled pending row (never booked, not linked yet) and a
-- booked row not linked yet, on the same account with the same amount, the booked one with a
-- later Powens id and dated 0 to 10 days after.
CREATE OR REPLACE TEMP TABLE _twin_candidates AS
WITH pending AS (
    SELECT p.id, p.account_id, p.amount, p.date, CAST(p.external_id AS BIGINT) AS ext
    FROM ledger.bank_transactions p
    WHERE p.tenant_id = $tenant AND p.status = 'cancelled' AND p.booked_at IS NULL
      AND p.date >= $from AND p.date < $to
      AND NOT EXISTS (SELECT 1 FROM ledger.bank_transactions x WHERE x.twin_of_id = p.id)
),
candidates AS (
    SELECT p.id AS pending_id, p.date AS pending_date, b.id AS booked_id, b.date AS booked_date,
           abs(date_diff('day', p.date, b.date)) AS distance
    FROM pending p
    JOIN ledger.bank_transactions b
      ON b.account_id = p.account_id AND b.amount = p.amount
     AND b.status = 'booked' AND b.twin_of_id IS NULL
     AND CAST(b.external_id AS BIGINT) > p.ext
     AND b.date BETWEEN p.date AND p.date + INTERVAL 10 DAY
    WHERE b.date >= $from AND b.date < $to
)
SELECT *,
    row_number() OVER (PARTITION BY pending_id ORDER BY distance, booked_id) AS by_pending,
    row_number() OVER (PARTITION BY booked_id ORDER BY distance, pending_id) AS by_booked
FROM candidates
