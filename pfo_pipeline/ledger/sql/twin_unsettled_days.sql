-- The days of the pending rows the next pass will link on the stretch of _twin_candidates: the
-- candidates between rows the links of _twin_links left unlinked, ranked again, that are each
-- other's nearest. (They are pairs of the whole history: see twins.py.)
WITH linked AS (
    SELECT pending_id AS id FROM _twin_links UNION ALL SELECT booked_id FROM _twin_links
),
left_over AS (
    SELECT c.pending_date,
        row_number() OVER (PARTITION BY c.pending_id ORDER BY c.distance, c.booked_id) AS by_pending,
        row_number() OVER (PARTITION BY c.booked_id ORDER BY c.distance, c.pending_id) AS by_booked
    FROM _twin_candidates c
    WHERE c.pending_id NOT IN (SELECT id FROM linked) AND c.booked_id NOT IN (SELECT id FROM linked)
)
SELECT DISTINCT pending_date FROM left_over WHERE by_pending = 1 AND by_booked = 1
