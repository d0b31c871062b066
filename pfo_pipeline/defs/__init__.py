"""Dagster definitions, one concern per module (resources, partitions, assets, checks, jobs...)."""
