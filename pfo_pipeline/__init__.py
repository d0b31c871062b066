"""Pocket Family Office open-banking pipeline (Powens -> DuckDB ledger -> dbt -> overview)."""
