"""Ledger ingestion: the Powens syncs into the DuckLake ledger, their checks and automation."""
