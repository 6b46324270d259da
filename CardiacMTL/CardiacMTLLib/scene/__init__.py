"""MRML scene logic (slicer-core, never Qt): results as nodes and back."""
