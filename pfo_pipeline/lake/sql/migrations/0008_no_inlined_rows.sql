-- Migration 8: no table's rows are inlined in the catalog any more: every write goes to a Parquet
-- file (the maintenance job merges the small ones). DuckLake 1.4.4's flush of inlined rows to
-- Parquet keeps only the rows still live: the history of rows updated or deleted while inlined
-- was lost, so `pfo sql --as-of` inside the time-travel window answered differently after
-- maintenance (6 overview entries before, 3 after). Rows inlined before this migration are
-- flushed only once their last change has left the window (`ledger/inlined_flush.py`).
CALL lake.set_option('data_inlining_row_limit', 0);
