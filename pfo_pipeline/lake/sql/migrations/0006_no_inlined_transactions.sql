-- Migration 6: rows of bank_transactions and quarantine are never inlined in the catalog.
-- DuckLake 1.4.4 cannot commit a transaction that inserted a few rows (kept inlined) and then
-- updated or deleted every one of them: the commit writes an empty `INSERT ... VALUES ;` and
-- fails, at every retry. A transactions load whose only new rows are, say, the two legs of an
-- internal transfer (marked right after the insert, in the same transaction) never landed; a
-- record quarantined and loaded in the same load could do the same. These two tables' small
-- writes go to a Parquet file instead (the maintenance job compacts them).
CALL lake.set_option('data_inlining_row_limit', 0, schema => 'ledger', table_name => 'bank_transactions');
CALL lake.set_option('data_inlining_row_limit', 0, schema => 'ledger', table_name => 'quarantine');
