"""MRML scene logic of the atlas side: LV models as model nodes, atlas modes that reshape a model live,
and the explained-variance plot.

Like ``CardiacMTLLib.scene`` (whose node, table and plot helpers it uses) it takes the ``vtkMRMLScene``
explicitly and runs on Slicer or on the slicer-core wheel. A model node's polydata follows ``mesh.py``:
endocardial points first, then epicardial ones, triangles of both, and the ``surface`` point array
(0 endo, 1 epi). Moving a mode slider only replaces the points of the displayed mean, so the 3D view
updates without new nodes.
"""

from __future__ import annotations

import numpy as np

from CardiacAtlasLib.atlas import Atlas
from CardiacAtlasLib.mesh import ENDO, SURFACE_ARRAY, LVMesh, polydata_from_mesh
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.scene.nodes import double_column, line_plot, string_column, table_node

MODEL_COLORS = {"ED": (0.85, 0.35, 0.30), "ES": (0.95, 0.65, 0.30), "atlas": (0.55, 0.70, 0.90)}
SD_RANGE = 3.0


def mesh_points(model_node) -> np.ndarray:
    """The points (n, 3) mm a model node shows now."""
    from vtk.util.numpy_support import vtk_to_numpy

    return vtk_to_numpy(model_node.GetPolyData().GetPoints().GetData()).astype(np.float64).copy()


def set_mesh_points(model_node, points_mm: np.ndarray) -> None:
    """Move the points of a model node (same topology) and let the views re-render."""
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    polydata = model_node.GetPolyData()
    points_mm = np.ascontiguousarray(points_mm, dtype=np.float64)
    if points_mm.shape != (polydata.GetNumberOfPoints(), 3):
        raise CardiacInputError(
            f"{model_node.GetName()}: {polydata.GetNumberOfPoints()} points expected, got {points_mm.shape}"
        )
    # a new polydata with the same cells: the views' pipelines see a replaced mesh and re-render
    moved = vtk.vtkPolyData()
    moved.ShallowCopy(polydata)
    points = vtk.vtkPoints()
    points.SetData(numpy_to_vtk(points_mm, deep=True))
    moved.SetPoints(points)
    model_node.SetAndObservePolyData(moved)


def add_model(
    scene,
    mesh: LVMesh,
    name: str,
    color=(0.85, 0.35, 0.30),
    opacity: float = 1.0,
    model=None,
    slice_intersections: bool = True,
):
    """A model node showing ``mesh`` (a new node, or ``model`` with its polydata replaced).

    ``slice_intersections``: draw where the model cuts the slice views (for a patient's fitted model;
    an atlas shape lives in its own coordinates and is shown in 3D only).
    """
    if model is None:
        model = scene.AddNewNodeByClass("vtkMRMLModelNode", scene.GenerateUniqueName(name))
    model.SetAndObservePolyData(polydata_from_mesh(mesh))
    if model.GetDisplayNode() is None:
        model.CreateDefaultDisplayNodes()
    display = model.GetDisplayNode()
    display.SetColor(*color)
    display.SetOpacity(opacity)
    display.SetScalarVisibility(False)
    display.SetVisibility2D(slice_intersections)
    return model


def mesh_from_model(model_node) -> LVMesh:
    """An :class:`LVMesh` from a model node that follows the ``surface`` array convention."""
    from vtk.util.numpy_support import vtk_to_numpy

    polydata = model_node.GetPolyData()
    array = polydata.GetPointData().GetArray(SURFACE_ARRAY) if polydata is not None else None
    if array is None:
        raise CardiacInputError(f"{model_node.GetName()}: no '{SURFACE_ARRAY}' point array (0 endo, 1 epi)")
    surface = vtk_to_numpy(array).astype(int).ravel()
    n_endo = int(np.sum(surface == ENDO))
    faces = vtk_to_numpy(polydata.GetPolys().GetConnectivityArray()).astype(np.int64).reshape(-1, 3)
    on_endo = np.all(faces < n_endo, axis=1)
    return LVMesh(mesh_points(model_node), faces[on_endo], faces[~on_endo], n_endo)


def add_lv_fits(scene, fits, models: dict | None = None) -> dict:
    """Model nodes ``LV model <phase>`` of fitted LV models; ``fits`` maps phase -> object with ``.mesh``.

    ``models`` (phase -> node) are reused when given, so a refit after a landmark edit updates in place.
    """
    models = dict(models or {})
    items = (
        fits.items()
        if isinstance(fits, dict)
        else ((getattr(f, "phase", str(i)), f) for i, f in enumerate(fits))
    )
    for phase, fit in items:
        mesh = getattr(fit, "mesh", fit)
        models[phase] = add_model(
            scene,
            mesh,
            f"LV model {phase}",
            color=MODEL_COLORS.get(phase, MODEL_COLORS["ED"]),
            opacity=1.0 if phase == "ED" else 0.6,
            model=models.get(phase),
        )
        models[phase].SetAttribute("CardiacAtlas.phase", str(phase))
    return models


def variance_table(scene, atlas: Atlas, n_modes: int | None = None, table=None):
    """Per mode: ``Mode``, ``Explained (%)``, ``Cumulative (%)``, ``SD (mm)``."""
    n = atlas.n_modes_ if n_modes is None else min(n_modes, atlas.n_modes_)
    explained = 100.0 * atlas.explained_variance_ratio_[:n]
    table = table_node(scene, "Atlas explained variance", table)
    double_column(table, "Mode", list(range(1, n + 1)))
    double_column(table, "Explained (%)", explained)
    double_column(table, "Cumulative (%)", np.cumsum(explained))
    double_column(table, "SD (mm)", atlas.sd_mm_[:n])
    table.Modified()
    return table


def scores_table(scene, atlas: Atlas, scores_mm: np.ndarray, name: str = "Patient mode scores", table=None):
    """A case's mode scores: ``Mode``, ``Score (mm)``, ``Score (SD)``."""
    scores_mm = np.asarray(scores_mm, dtype=float)
    table = table_node(scene, name, table)
    string_column(table, "Mode", [f"mode {k + 1}" for k in range(len(scores_mm))])
    double_column(table, "Score (mm)", scores_mm)
    double_column(table, "Score (SD)", scores_mm / atlas.sd_mm_[: len(scores_mm)])
    table.Modified()
    return table


class AtlasScene:
    """An atlas in a scene: its mean as a model node reshaped live by mode sliders, and its variance plot.

    ``phase`` selects which phase of the atlas shapes is displayed. ``set_mode_sd({mode: sd})`` moves the
    displayed shape to ``mean + sum sd_k * SD_k * mode_k`` (modes 0-based, sd clipped to ``±sd_range``).
    """

    sd_range = SD_RANGE

    def __init__(self, scene, atlas: Atlas, phase: str | None = None, n_sliders: int = 5):
        self.scene = scene
        self.atlas = atlas
        self.phase = phase or atlas.phases[0]
        if self.phase not in atlas.phases:
            raise CardiacInputError(f"phase must be one of {atlas.phases}, got {self.phase!r}")
        self.n_sliders = min(n_sliders, atlas.n_modes_)
        self.sd = np.zeros(self.n_sliders)
        self.model = add_model(
            scene,
            atlas.mesh(atlas.shape(), self.phase),
            f"Atlas shape {self.phase}",
            MODEL_COLORS["atlas"],
            slice_intersections=False,
        )
        self.model.SetAttribute("CardiacAtlas.role", "atlas shape")
        self.variance = variance_table(scene, atlas, n_modes=min(10, atlas.n_modes_))
        self.variance_chart = line_plot(
            scene,
            self.variance,
            "Mode",
            ["Explained (%)", "Cumulative (%)"],
            "Atlas explained variance",
            "mode",
            "variance explained (%)",
        )
        self.scores = None

    def set_mode_sd(self, sd_by_mode: dict[int, float]) -> np.ndarray:
        """Set some sliders (mode -> SD) and reshape the displayed model; returns its points."""
        for mode, value in sd_by_mode.items():
            if not 0 <= mode < self.n_sliders:
                raise CardiacInputError(f"mode must be 0..{self.n_sliders - 1}, got {mode}")
            self.sd[mode] = float(np.clip(value, -SD_RANGE, SD_RANGE))
        shape = self.atlas.shape(self.sd * self.atlas.sd_mm_[: self.n_sliders])
        points = self.atlas.mesh(shape, self.phase).points_mm
        set_mesh_points(self.model, points)
        return points

    def shape_volumes_ml(self) -> tuple[float, float]:
        """Cavity and epicardial volume (mL) of the displayed shape."""
        mesh = self.atlas.mesh(self.atlas.shape(self.sd * self.atlas.sd_mm_[: self.n_sliders]), self.phase)
        return mesh.endo_cavity_volume_ml, mesh.epi_volume_ml

    def shape_myocardial_volume_ml(self) -> float:
        """Myocardial volume (mL) of the displayed shape: epicardial minus cavity volume."""
        cavity, epicardial = self.shape_volumes_ml()
        return epicardial - cavity

    def scores_sd(self, scores_mm: np.ndarray) -> np.ndarray:
        """The first ``n_sliders`` of a case's mode scores (mm) in standard deviations of the atlas."""
        scores_mm = np.asarray(scores_mm, dtype=float)[: self.n_sliders]
        return scores_mm / self.atlas.sd_mm_[: len(scores_mm)]

    def project_case(self, meshes: dict) -> np.ndarray:
        """Mode scores (mm) of a case's fitted meshes (phase -> LVMesh), shown in a scores table."""
        missing = [p for p in self.atlas.phases if p not in meshes]
        if missing:
            raise CardiacInputError(
                f"the atlas needs the phases {self.atlas.phases}; the case lacks {missing}"
            )
        shape = np.stack([np.asarray(meshes[p].points_mm) for p in self.atlas.phases])
        scores = self.atlas.project(shape)
        self.scores = scores_table(self.scene, self.atlas, scores[: self.n_sliders], table=self.scores)
        return scores

    def remove(self) -> None:
        nodes = [self.model, self.variance, self.scores, self.variance_chart]
        nodes += [
            self.variance_chart.GetNthPlotSeriesNode(i)
            for i in range(self.variance_chart.GetNumberOfPlotSeriesNodes())
        ]
        for node in nodes:
            if node is not None and self.scene.IsNodePresent(node):
                self.scene.RemoveNode(node)
