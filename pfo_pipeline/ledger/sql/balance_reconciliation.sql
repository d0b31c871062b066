-- Between two consecutive snapshots of an account, the balance moves by exactly the booked
-- transactions Powens applied in between: booked (by Powens' clock) after the first snapshot's
-- `last_updated_at` and up to the second's, minus booked rows deleted in that interval.
-- One row: the snapshot pairs compared, how many differ by more than `tolerance`, and the
-- accounts (sorted) where they do.
WITH snaps AS (
    SELECT account_id, as_of_date, current_balance, last_updated_at,
           lag(current_balance) OVER w AS prev_balance,
           lag(last_updated_at) OVER w AS prev_updated_at,
           lag(as_of_date) OVER w AS prev_date
    FROM ledger.account_balances WHERE balance_type = 'current'
    WINDOW w AS (PARTITION BY account_id ORDER BY as_of_date)
),
pairs AS (
    SELECT s.account_id, s.prev_date, s.as_of_date,
           s.current_balance - s.prev_balance AS balance_change,
           coalesce(sum(CASE
               WHEN t.booked_at > s.prev_updated_at AND t.booked_at <= s.last_updated_at
                    AND (t.deleted_at IS NULL OR t.deleted_at > s.last_updated_at) THEN t.amount
               WHEN t.booked_at <= s.prev_updated_at
                    AND t.deleted_at > s.prev_updated_at AND t.deleted_at <= s.last_updated_at
                    THEN -t.amount
               ELSE 0 END), 0) AS transactions_sum
    FROM snaps s
    LEFT JOIN ledger.bank_transactions t ON t.account_id = s.account_id AND t.booked_at IS NOT NULL
    WHERE s.prev_balance IS NOT NULL
    GROUP BY ALL
)
SELECT count(*) AS pairs_checked,
       count(*) FILTER (WHERE abs(balance_change - transactions_sum) > $tolerance) AS mismatches,
       coalesce(
           list_sort(list_distinct(
               list(account_id) FILTER (WHERE abs(balance_change - transactions_sum) > $tolerance)
           )),
           []::VARCHAR[]
       ) AS mismatched_accounts
FROM pairs
