-- Migration 7: Parquet files of about 64 MB at most. A writer keeps what a file's footer will hold
-- (every row group's column statistics) until it closes the file: at DuckLake's default (512 MB)
-- a full load wrote the whole history as one file, and a 5M-row load's insert held ~12 MB more
-- than a 1M-row one's. Rolling over at 64 MB bounds that by the file (~5 MB more, not ~12).
CALL lake.set_option('target_file_size', '64MB');
