"""The browser app on trame-slicer."""
