"""The operations of the original design: sync commands (Powens -> ledger) and ledger queries."""
