"""Training data sets (inference never imports this package)."""
