"""CardiacAtlas library: LV finite-element model fitting and the Procrustes + PCA shape atlas.

Empty for now (the atlas issue fills it); importable so that the extension layout and the
``cardiac-atlas`` entry point are in place. It may import ``CardiacMTLLib``, never the other way round.
"""

__version__ = "0.1.0"
