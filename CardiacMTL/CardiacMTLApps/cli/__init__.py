"""The command lines: ``cardiac-mtl``, ``cardiac-atlas``, ``cardiac-train``."""
