"""Trainers (inference never imports this package)."""
