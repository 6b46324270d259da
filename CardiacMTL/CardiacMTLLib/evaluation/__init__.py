"""Metrics and evaluations (inference never imports this package)."""
