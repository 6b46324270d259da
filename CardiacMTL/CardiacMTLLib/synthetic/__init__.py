"""Synthetic cines with exact ground truth."""
