"""Figures of a result (the one-page report) and its wording."""
