"""The canonical ledger and the only writer of the lake: migrations, Pandera records, mapping,
loading, and the writes of transfers, overrides, connection health, knowledge and telemetry."""
