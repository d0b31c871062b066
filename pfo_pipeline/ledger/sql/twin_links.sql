-- The twin links of a pass over a tenant's rows dated in [$from, $to), into the temp table
-- _twin_links, in one statement: a temp table written in the load's transaction keeps its memory
-- until the commit, and every candidate of the whole history (a full load's stretch) grows with
-- the history's density, so the candidates stay inside the statement; only the links are kept.
-- A candidate twin is a cancelled pending row (never booked, not linked yet) and a booked row not
-- linked yet, on the same account with the same amount, the booked one with a later Powens id and
-- dated 0 to 10 days after. Candidates that are each other's nearest are linked. Also, as rows
-- with no booked_id, the days of the pending rows the next pass will link: the candidates between
-- rows these links leave unlinked, ranked again, that are each other's nearest (pairs of the
-- whole history: see twins.py).
INSERT INTO _twin_links
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
),
ranked AS (
    SELECT *,
        row_number() OVER (PARTITION BY pending_id ORDER BY distance, booked_id) AS by_pending,
        row_number() OVER (PARTITION BY booked_id ORDER BY distance, pending_id) AS by_booked
    FROM candidates
),
links AS (
    SELECT pending_id, booked_id, pending_date, booked_date
    FROM ranked
    WHERE by_pending = 1 AND by_booked = 1
),
linked AS (
    SELECT pending_id AS id FROM links UNION ALL SELECT booked_id FROM links
),
left_over AS (
    SELECT c.pending_date,
        row_number() OVER (PARTITION BY c.pending_id ORDER BY c.distance, c.booked_id) AS by_pending,
        row_number() OVER (PARTITION BY c.booked_id ORDER BY c.distance, c.pending_id) AS by_booked
    FROM ranked c
    WHERE c.pending_id NOT IN (SELECT id FROM linked) AND c.booked_id NOT IN (SELECT id FROM linked)
)
SELECT pending_id, booked_id, pending_date, booked_date FROM links
UNION ALL
SELECT DISTINCT NULL, NULL, pending_date, NULL::DATE
FROM left_over
WHERE by_pending = 1 AND by_booked = 1
