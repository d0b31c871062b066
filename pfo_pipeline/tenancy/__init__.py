"""Tenants, the app blueprint they are checked against, and the open-banking guardrail."""
