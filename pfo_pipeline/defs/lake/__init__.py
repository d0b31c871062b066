"""Lake maintenance: compaction, snapshot expiry and file clean-up, nightly."""
