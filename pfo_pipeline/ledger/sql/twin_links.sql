-- The candidates of twin_candidates.sql that are each other's nearest, into _twin_links.
INSERT INTO _twin_links
SELECT pending_id, booked_id, pending_date, booked_date
FROM _twin_candidates
WHERE by_pending = 1 AND by_booked = 1
