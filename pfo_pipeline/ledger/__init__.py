"""The canonical ledger: DuckDB schema, Pandera records, mapping and loading."""
