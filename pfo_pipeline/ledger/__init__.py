"""The bank domain: the canonical records (Pandera), mapping Powens payloads onto them, and every
load of the `ledger` schema written through the lake (`pfo_pipeline.lake`): accounts, balances and
transactions (stage, merge, one commit), quarantine, cursors, load records, twins, internal
transfers, category overrides and connection health."""
