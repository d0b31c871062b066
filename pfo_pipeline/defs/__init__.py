"""Dagster definitions, one folder per domain (ledger, analytics, knowledge, webhooks, lake), each
with its assets, checks and automation; `resources.py` and `partitions.py` are shared. Loaded by
`load_from_defs_folder` in `pfo_pipeline.definitions`; nothing else in the package imports them."""
