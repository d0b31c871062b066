"""Signed Powens webhooks: verification, a durable inbox, the receiver, the bank-connect flow."""
