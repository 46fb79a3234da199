"""Metrics for further families register here."""
