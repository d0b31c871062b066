-- Legs dated in [$from, $to) paid to or from one of the tenant's own IBANs are internal transfers
-- too, even without a pair: their marks, as transfer_marks.sql gives them, once every chunk's
-- pairs are in (_transfer_pairs). Read from the range's legs file (transfer_legs.sql).
SELECT id, NULL::VARCHAR AS pair_id, date, NOT marked OR transfer_pair_id IS NOT NULL
FROM read_parquet($legs)
WHERE own_iban AND date >= $from AND date < $to
  AND id NOT IN (SELECT id FROM _transfer_pairs)
