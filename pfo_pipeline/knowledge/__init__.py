"""The financial-overview knowledge space: derived figures only, kept 180 days."""
