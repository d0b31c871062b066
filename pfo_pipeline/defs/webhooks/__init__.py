"""Webhooks: the sensor that turns verified Powens events into runs."""
