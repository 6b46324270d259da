"""CardiacAtlas library: LV finite-element model fitting and the Procrustes + PCA shape atlas.

The model: ``lv_template`` (prolate spheroidal Hermite surfaces, the CAP mesh), ``mesh`` (``LVMesh`` and
its VTK file), ``contours`` (the data a model is fitted to), ``fit`` (the solver, label maps in),
``guidepoints`` (CAP/biv-me guide points in) and ``fit_io`` (the ``fit`` action's folders). The atlas:
``atlas`` (the fit/transform object), ``atlas_io`` (fit folders in, the atlas folder out), ``plot``,
``cap`` (the CAP MESA atlas), ``associate`` (shape against labels). ``synthetic`` makes shapes with known
modes and ``scene`` shows models and atlases in MRML. It imports ``CardiacMTLLib``, never the other way.
"""

__version__ = "0.1.0"
