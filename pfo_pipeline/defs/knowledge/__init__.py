"""Knowledge: the financial-overview documents, their retention, and the PII check."""
