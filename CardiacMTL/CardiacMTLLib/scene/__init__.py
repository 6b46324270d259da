"""MRML scene logic (slicer-core, never Qt): analysis results as nodes, and the user's edits back as results.

``cardiac.py`` holds :class:`~CardiacMTLLib.scene.cardiac.CardiacScene`, one study in one scene; it builds
on ``sequences.py`` (the cine as a volume sequence), ``segmentation.py`` (label maps as segmentation
nodes), ``tables.py`` (indices, diagnosis, QC and volume curves as table nodes), ``markups.py`` (landmarks
as named markups) and ``nodes.py`` (volume, matrix, table and plot helpers, also used by the atlas side).
"""
