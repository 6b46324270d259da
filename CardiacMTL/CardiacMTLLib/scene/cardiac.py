"""MRML scene logic: analysis results as Slicer nodes, and the user's edits of those nodes back as results.

The only part of ``CardiacMTLLib`` that knows MRML. Every function takes the ``vtkMRMLScene`` explicitly,
so the same code serves the desktop module (``slicer.mrmlScene``), the browser app (the scene of
trame-slicer's ``SlicerApp``) and pytest on the ``slicer-core`` wheel. Conventions follow SlicerHeart:
a cine is a volume **sequence** with a sequence browser, per-frame results are sequences synchronised
with it, landmarks are **named** markups control points, measurements go to a table with ``Metric``,
``Value`` and ``Unit`` columns.

Geometry: a :class:`~CardiacMTLLib.cine.Cine` voxel ``data[t, k, j, i]`` is the node's voxel ``(i, j, k)``
(VTK image order), the node's IJK-to-RAS matrix has the cine's voxel spacing and the directions of the
cine's affine (ACDC files carry a unit affine and the spacing in ``pixdim``; the node gets the real
spacing either way). Landmarks are placed from their voxel coordinates (``ijk``), and an edited point is
written back as ``ijk`` and as ``ras`` in the library's own convention (``cine.affine @ ijk``).

``slicer`` (slicer-core, or Slicer itself) is imported inside functions, so the rest of the library and
the command line work without it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import STRUCTURES

LABEL_NAMES = {int(v): v.display_name for v in STRUCTURES}
LABEL_SEGMENT_IDS = {1: "RV_cavity", 2: "LV_myocardium", 3: "LV_cavity"}
LABEL_COLORS = {int(v): v.colour_rgb for v in STRUCTURES}
CURVE_COLORS = {v.short_name: v.colour_rgb for v in STRUCTURES}
INDEX_COLUMNS = ("Metric", "Value", "Unit")
ATTRIBUTE_PREFIX = "CardiacMTL."
_UNIT_RE = re.compile(r"^(?P<metric>.*?)\s*\((?P<unit>[^()]*)\)$")


def slicer_module():
    try:
        import slicer
    except ImportError as e:  # pragma: no cover - exercised only without slicer-core
        raise ImportError(
            "the scene logic needs 3D Slicer or the slicer-core wheel (pip install 'trame-slicer[standalone]')"
        ) from e
    return slicer


# ------------------------------------------------------------------------------------------ geometry


def ijk_to_ras(affine: np.ndarray, spacing_mm) -> np.ndarray:
    """The node's 4 x 4 IJK-to-RAS matrix: the affine's directions scaled by the true voxel spacing."""
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4):
        raise CardiacInputError(f"the affine must be 4 x 4, got shape {affine.shape}")
    columns = affine[:3, :3]
    norms = np.linalg.norm(columns, axis=0)
    if np.any(norms < 1e-9):
        raise CardiacInputError(f"the affine has a zero column, so no orientation: {affine.tolist()}")
    matrix = np.eye(4)
    matrix[:3, :3] = columns / norms * np.asarray(spacing_mm, dtype=float)
    matrix[:3, 3] = affine[:3, 3]
    return matrix


def _vtk_matrix(array: np.ndarray):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def _numpy_matrix(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def node_ijk_to_ras(volume_node) -> np.ndarray:
    """A volume node's IJK-to-RAS matrix as a numpy 4 x 4 array."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return _numpy_matrix(matrix)


def image_data_from_array(array: np.ndarray):
    """A ``vtkImageData`` holding ``array`` (slices, rows, cols) as voxels (i, j, k); unit spacing, origin 0."""
    import vtk
    from vtk.util import numpy_support

    array = np.ascontiguousarray(array)
    if array.ndim != 3:
        raise CardiacInputError(f"an image must be (slices, rows, cols), got shape {array.shape}")
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    scalars = numpy_support.numpy_to_vtk(
        array.ravel(), deep=True, array_type=numpy_support.get_vtk_array_type(array.dtype)
    )
    image.GetPointData().SetScalars(scalars)
    return image


def array_from_image_data(image) -> np.ndarray:
    """The voxels of a ``vtkImageData`` as (slices, rows, cols)."""
    from vtk.util import numpy_support

    cols, rows, slices = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(slices, rows, cols).copy()


def make_volume_node(
    array: np.ndarray, matrix: np.ndarray, name: str, class_name: str = "vtkMRMLScalarVolumeNode"
):
    """A volume node (not added to any scene) with voxels ``array`` (slices, rows, cols) and IJK-to-RAS ``matrix``."""
    node = getattr(slicer_module(), class_name)()
    node.SetName(name)
    node.SetIJKToRASMatrix(_vtk_matrix(matrix))
    node.SetAndObserveImageData(image_data_from_array(array))
    return node


def array_from_volume_node(volume_node) -> np.ndarray:
    """A volume node's voxels as (slices, rows, cols)."""
    return array_from_image_data(volume_node.GetImageData())


# ----------------------------------------------------------------------------------- module logics


@dataclass
class ModuleLogics:
    """The two Slicer module logics the scene logic needs (Sequences, Segmentations).

    Inside Slicer they are the application's; on slicer-core they are created once for the scene.
    """

    sequences: object
    segmentations: object

    @classmethod
    def for_scene(cls, scene, app_logic=None) -> ModuleLogics:
        slicer = slicer_module()
        modules = getattr(slicer, "modules", None)
        if (
            modules is not None
            and hasattr(modules, "sequences")
            and scene is getattr(slicer, "mrmlScene", None)
        ):
            return cls(modules.sequences.logic(), modules.segmentations.logic())
        sequences = slicer.vtkSlicerSequencesLogic()
        segmentations = slicer.vtkSlicerSegmentationsModuleLogic()
        for logic in (sequences, segmentations):
            if app_logic is not None:
                logic.SetMRMLApplicationLogic(app_logic)
            logic.SetMRMLScene(scene)  # registers the node classes and segmentation converter rules
        return cls(sequences, segmentations)


# ------------------------------------------------------------------------------------------ the cine


def _index_values(cine) -> tuple[str, str, list[str]]:
    """Sequence index name, unit and one value per frame (trigger times when known, else frame numbers)."""
    times = cine.trigger_times_ms
    if times and len(times) == cine.num_frames and len(set(times)) == len(times):
        return "time", "ms", [f"{t:g}" for t in times]
    return "frame", "", [str(n) for n in cine.frame_numbers]


@dataclass
class CineNodes:
    """The cine in the scene: ``sequence`` of volumes, its ``browser`` and the displayed ``volume`` (proxy)."""

    sequence: object
    browser: object
    volume: object
    index_values: list[str]


def add_cine(scene, cine, logics: ModuleLogics, name: str = "cine") -> CineNodes:
    """Add ``cine`` as a volume sequence with a sequence browser; returns the nodes (proxy volume shown)."""
    matrix = ijk_to_ras(cine.affine, cine.spacing_mm)
    index_name, unit, values = _index_values(cine)
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", scene.GenerateUniqueName(name))
    sequence.SetIndexName(index_name)
    sequence.SetIndexUnit(unit)
    sequence.SetIndexType(sequence.NumericIndex)
    data = np.asarray(cine.data, dtype=np.float32)
    for t, value in enumerate(values):
        frame_node = make_volume_node(data[t], matrix, f"{name} frame {cine.frame_numbers[t]}")
        sequence.SetDataNodeAtValue(frame_node, value)
    browser = scene.AddNewNodeByClass(
        "vtkMRMLSequenceBrowserNode", scene.GenerateUniqueName(f"{name} browser")
    )
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    browser.SetAttribute(ATTRIBUTE_PREFIX + "source", str(cine.source))
    logics.sequences.UpdateProxyNodesFromSequences(browser)
    volume = browser.GetProxyNode(sequence)
    volume.SetName(name)
    if volume.GetDisplayNode() is None:
        volume.CreateDefaultDisplayNodes()
    _auto_window_level(volume, data)
    return CineNodes(sequence, browser, volume, values)


def _auto_window_level(volume, data: np.ndarray) -> None:
    display = volume.GetDisplayNode()
    if display is None:
        return
    low, high = np.percentile(data, [1.0, 99.5])
    display.AutoWindowLevelOff()
    display.SetWindowLevel(float(max(high - low, 1.0)), float((high + low) / 2))


def cine_from_sequence(sequence_node, source: str = "") -> object:
    """A :class:`~CardiacMTLLib.cine.Cine` from a volume sequence node (what a user loaded in Slicer).

    Frames are the sequence's data nodes in index order; trigger times come from a ``time`` index in ms
    (or s). Every frame must have the same voxel grid.
    """
    from CardiacMTLLib.types import Cine

    count = sequence_node.GetNumberOfDataNodes()
    if count == 0:
        raise CardiacInputError(f"sequence {sequence_node.GetName()!r} holds no volumes")
    frames, matrix = [], None
    for n in range(count):
        node = sequence_node.GetNthDataNode(n)
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode") or node.GetImageData() is None:
            raise CardiacInputError(f"sequence {sequence_node.GetName()!r}: item {n} is not a scalar volume")
        this = node_ijk_to_ras(node)
        if matrix is not None and not np.allclose(this, matrix, atol=1e-4):
            raise CardiacInputError(
                f"sequence {sequence_node.GetName()!r}: item {n} has another voxel grid than item 0"
            )
        matrix = this
        frames.append(array_from_volume_node(node).astype(np.float32))
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise CardiacInputError(
            f"sequence {sequence_node.GetName()!r}: frames differ in size {sorted(shapes)}"
        )
    spacing = tuple(float(s) for s in np.linalg.norm(matrix[:3, :3], axis=0))
    times = None
    if sequence_node.GetIndexName().lower().startswith("time"):
        scale = {"ms": 1.0, "msec": 1.0, "s": 1000.0, "sec": 1000.0}.get(sequence_node.GetIndexUnit().lower())
        if scale is not None:
            try:
                times = [float(sequence_node.GetNthIndexValue(n)) * scale for n in range(count)]
            except ValueError:
                times = None
    return Cine(
        data=np.stack(frames),
        spacing_mm=spacing,
        affine=matrix,
        frame_numbers=list(range(count)),
        source=source or sequence_node.GetName(),
        trigger_times_ms=times,
    )


# ---------------------------------------------------------------------------------- segmentation


def make_segmentation_node(labels: np.ndarray, matrix: np.ndarray, name: str):
    """A segmentation node (not in a scene) with one segment per structure, sharing one labelmap.

    Segment ids are :data:`LABEL_SEGMENT_IDS`, names :data:`LABEL_NAMES`, label values 1 RV, 2 Myo,
    3 LV; a structure absent from ``labels`` still has its (empty) segment, so every frame has the same
    three segments.
    """
    slicer = slicer_module()
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    values = set(np.unique(labels).tolist()) - {0}
    if not values <= set(LABEL_NAMES):
        raise CardiacInputError(f"labels must be 0 bg, 1 RV, 2 Myo, 3 LV; found values {sorted(values)}")
    image = slicer.vtkOrientedImageData()
    image.ShallowCopy(image_data_from_array(labels))
    image.SetImageToWorldMatrix(_vtk_matrix(matrix))
    node = slicer.vtkMRMLSegmentationNode()
    node.SetName(name)
    segmentation = node.GetSegmentation()
    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    for value, segment_id in LABEL_SEGMENT_IDS.items():
        segment = slicer.vtkSegment()
        segment.SetName(LABEL_NAMES[value])
        segment.SetColor(*LABEL_COLORS[value])
        segment.SetLabelValue(value)
        segment.AddRepresentation(representation, image)  # one image for all: a shared labelmap
        segmentation.AddSegment(segment, segment_id)
    return node


def _segment_value(segmentation, n: int) -> int | None:
    """The label value (1 RV, 2 Myo, 3 LV) a segment stands for, by its id or else its name."""
    segment_id = segmentation.GetNthSegmentID(n)
    for value, known_id in LABEL_SEGMENT_IDS.items():
        if segment_id == known_id:
            return value
    name = segmentation.GetNthSegment(n).GetName()
    return next((value for value, known in LABEL_NAMES.items() if known == name), None)


def labels_from_segmentation(
    segmentation_node, reference_shape: tuple[int, int, int], matrix: np.ndarray
) -> np.ndarray:
    """The label map (slices, rows, cols) of a segmentation node on the grid ``reference_shape``/``matrix``.

    Segments are mapped back to 1 RV, 2 Myo, 3 LV by their id, tag or name; other segments are ignored.
    """
    import vtk

    slicer = slicer_module()
    segmentation = segmentation_node.GetSegmentation()
    ids, values = vtk.vtkStringArray(), vtk.vtkIntArray()
    for n in range(segmentation.GetNumberOfSegments()):
        value = _segment_value(segmentation, n)
        if value is not None:
            ids.InsertNextValue(segmentation.GetNthSegmentID(n))
            values.InsertNextValue(value)
    slices, rows, cols = reference_shape
    if ids.GetNumberOfValues() == 0:
        return np.zeros(reference_shape, dtype=np.uint8)
    reference = slicer.vtkOrientedImageData()
    reference.SetExtent(0, cols - 1, 0, rows - 1, 0, slices - 1)
    reference.SetImageToWorldMatrix(_vtk_matrix(matrix))
    merged = slicer.vtkOrientedImageData()
    if not segmentation_node.GenerateMergedLabelmapForAllSegments(merged, 0, reference, ids, values):
        raise CardiacInputError(f"{segmentation_node.GetName()}: could not build a label map of its segments")
    if tuple(merged.GetDimensions()) != (cols, rows, slices):
        raise CardiacInputError(
            f"{segmentation_node.GetName()}: label map of {merged.GetDimensions()} voxels, expected {(cols, rows, slices)}"
        )
    return array_from_image_data(merged).astype(np.uint8)


# -------------------------------------------------------------------------------------------- tables


def split_metric(key: str) -> tuple[str, str]:
    """``'LVEDV (mL)'`` -> ``('LVEDV', 'mL')``; a key without a unit keeps an empty unit."""
    match = _UNIT_RE.match(key)
    return (match.group("metric"), match.group("unit")) if match else (key, "")


def table_node(scene, name: str, table=None):
    if table is None:
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    else:
        table.RemoveAllColumns()
    return table


def string_column(table, name: str, values) -> None:
    import vtk

    column = vtk.vtkStringArray()
    column.SetName(name)
    for value in values:
        column.InsertNextValue("" if value is None else str(value))
    table.AddColumn(column)


def double_column(table, name: str, values) -> None:
    import vtk

    column = vtk.vtkDoubleArray()
    column.SetName(name)
    for value in values:
        column.InsertNextValue(np.nan if value is None else float(value))
    table.AddColumn(column)


def indices_table(scene, indices: dict, table=None):
    """The clinical indices as a table node with ``Metric``, ``Value``, ``Unit`` columns (one row each)."""
    table = table_node(scene, "Cardiac indices", table)
    rows = [(*split_metric(key), value) for key, value in indices.items()]
    string_column(table, "Metric", [r[0] for r in rows])
    double_column(table, "Value", [r[2] for r in rows])
    string_column(table, "Unit", [r[1] for r in rows])
    table.SetUseColumnTitleAsColumnHeader(True) if hasattr(table, "SetUseColumnTitleAsColumnHeader") else None
    table.Modified()
    return table


def table_rows(table) -> list[dict]:
    """A table node's rows as dicts keyed by column name (the values as the table holds them)."""
    vtk_table = table.GetTable()
    names = [vtk_table.GetColumnName(c) for c in range(vtk_table.GetNumberOfColumns())]
    rows = []
    for r in range(vtk_table.GetNumberOfRows()):
        row = {}
        for c, name in enumerate(names):
            value = vtk_table.GetValue(r, c)
            row[name] = value.ToDouble() if value.IsNumeric() else value.ToString()
        rows.append(row)
    return rows


def diagnosis_table(scene, diagnosis: dict | None, table=None):
    """Class probabilities as a table (``Class``, ``Probability``, ``Criteria``); empty without a diagnosis."""
    table = table_node(scene, "Diagnosis", table)
    probabilities = (diagnosis or {}).get("probabilities") or {}
    summary = (diagnosis or {}).get("criteria_summary") or {}
    string_column(table, "Class", list(probabilities))
    double_column(table, "Probability", list(probabilities.values()))
    string_column(table, "Criteria", [summary.get(c, "") for c in probabilities])
    if diagnosis:
        table.SetAttribute(ATTRIBUTE_PREFIX + "class", str(diagnosis.get("class")))
    table.Modified()
    return table


def criteria_table(scene, diagnosis: dict | None, table=None):
    """The ACDC criteria trace: ``Class``, ``Index``, ``Rule``, ``Value``, ``Status`` per criterion."""
    table = table_node(scene, "Diagnosis criteria", table)
    trace = (diagnosis or {}).get("criteria") or []
    for column in ("class", "index", "rule"):
        string_column(table, column.capitalize(), [c.get(column) for c in trace])
    double_column(table, "Value", [c.get("value") for c in trace])
    string_column(table, "Status", [c.get("status") for c in trace])
    table.Modified()
    return table


def qc_table(scene, qc: list[dict], table=None):
    """QC findings: ``Frame``, ``Slice``, ``Problem``."""
    table = table_node(scene, "QC findings", table)
    string_column(table, "Frame", [f.get("frame") for f in qc])
    string_column(table, "Slice", [f.get("slice") for f in qc])
    string_column(table, "Problem", [f.get("problem") for f in qc])
    table.Modified()
    return table


# --------------------------------------------------------------------------------------------- plots


def line_plot(
    scene,
    table,
    x_column: str,
    y_columns: list[str],
    title: str,
    x_title: str,
    y_title: str,
    colors: dict | None = None,
    chart=None,
):
    """A plot chart of ``y_columns`` against ``x_column`` of ``table`` (one series each); returns the chart."""
    slicer = slicer_module()
    if chart is None:
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(title))
    chart.RemoveAllPlotSeriesNodeIDs()
    chart.SetTitle(title)
    chart.SetXAxisTitle(x_title)
    chart.SetYAxisTitle(y_title)
    for name in y_columns:
        series = scene.AddNewNodeByClass(
            "vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(f"{title}: {name}")
        )
        series.SetAndObserveTableNodeID(table.GetID())
        series.SetXColumnName(x_column)
        series.SetYColumnName(name)
        series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
        if colors and name in colors:
            series.SetColor(*colors[name])
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart


def volume_curve_table(scene, frame_numbers: list[int], curves: dict, table=None):
    """The volume curves (``Frame`` and ``LV (mL)``, ``RV (mL)``, ``Myo (mL)``) as a table node."""
    table = table_node(scene, "Volume curves", table)
    double_column(table, "Frame", frame_numbers)
    for name in ("LV", "RV", "Myo"):
        if name in curves:
            double_column(table, f"{name} (mL)", curves[name])
    table.Modified()
    return table


# ------------------------------------------------------------------------------------------ markups


def landmark_key(landmark: dict) -> tuple:
    """What names a landmark across edits: label, frame and slice (its place in the list may change)."""
    slice_index = landmark.get("slice")
    return (str(landmark["label"]), int(landmark["frame"]), None if slice_index is None else int(slice_index))


def _find(landmarks: list[dict], key: tuple) -> int | None:
    return next((i for i, lm in enumerate(landmarks) if landmark_key(lm) == key), None)


@dataclass
class AnalysisNodes:
    """Every node :class:`CardiacScene` made for one analysis, by role."""

    segmentation_sequence: object = None
    segmentation: object = None
    indices: object = None
    diagnosis: object = None
    criteria: object = None
    qc: object = None
    curves: object = None
    curve_chart: object = None
    landmarks: dict = field(default_factory=dict)  # frame index -> markups fiducial node


class CardiacScene:
    """One study in one scene: the cine, the analysis result as nodes, and landmark edits flowing back.

    ``landmark_updater(result, landmarks) -> result`` recomputes what depends on the landmarks (default:
    ``CardiacMTLLib.landmarks.update_landmarks``); listeners added with :meth:`add_listener` are called
    with the new result after every edit, so a panel (Qt or web) can refresh.
    """

    def __init__(
        self,
        scene,
        logics: ModuleLogics | None = None,
        landmark_updater: Callable | None = None,
        app_logic=None,
    ):
        self.scene = scene
        self.logics = logics or ModuleLogics.for_scene(scene, app_logic)
        self.landmark_updater = landmark_updater
        self.cine = None
        self.cine_nodes: CineNodes | None = None
        self.result = None
        self.nodes = AnalysisNodes()
        self._listeners: list[Callable] = []
        self._points: dict[tuple[str, int], tuple] = {}  # (markups node id, point) -> landmark key
        self._observers: list[tuple[object, int]] = []
        self._interacting: set[str] = set()
        self._updating = False

    # ---- the cine
    def load_cine(self, cine, name: str | None = None) -> CineNodes:
        """Show ``cine`` as a volume sequence with a browser; clears a previous study's nodes."""
        self.clear()
        self.cine = cine
        self.cine_nodes = add_cine(self.scene, cine, self.logics, name or "cine")
        return self.cine_nodes

    @property
    def matrix(self) -> np.ndarray:
        return ijk_to_ras(self.cine.affine, self.cine.spacing_mm)

    def clear(self) -> None:
        """Remove the nodes of the current study (cine and results) from the scene."""
        self._remove_observers()
        for node in self._all_nodes():
            if node is not None and self.scene.IsNodePresent(node):
                self.scene.RemoveNode(node)
        self.cine = self.cine_nodes = self.result = None
        self.nodes = AnalysisNodes()
        self._points = {}

    def _all_nodes(self) -> list:
        nodes = []
        if self.cine_nodes is not None:
            nodes += [self.cine_nodes.volume, self.cine_nodes.sequence, self.cine_nodes.browser]
        n = self.nodes
        nodes += [n.segmentation, n.segmentation_sequence, n.indices, n.diagnosis, n.criteria, n.qc, n.curves]
        if n.curve_chart is not None:
            for i in range(n.curve_chart.GetNumberOfPlotSeriesNodes()):
                nodes.append(n.curve_chart.GetNthPlotSeriesNode(i))
            nodes.append(n.curve_chart)
        nodes += list(n.landmarks.values())
        return nodes

    def set_frame(self, index: int) -> None:
        """Show the frame at position ``index`` of the time axis (cine, segmentation and its landmarks)."""
        browser = self.cine_nodes.browser
        browser.SetSelectedItemNumber(int(index))
        self.logics.sequences.UpdateProxyNodesFromSequences(browser)
        for frame, node in self.nodes.landmarks.items():
            display = node.GetDisplayNode()
            if display is not None:
                display.SetVisibility(frame == int(index))

    @property
    def frame(self) -> int:
        return int(self.cine_nodes.browser.GetSelectedItemNumber())

    def add_listener(self, listener: Callable) -> None:
        self._listeners.append(listener)

    # ---- results -> nodes
    def show_result(self, result) -> AnalysisNodes:
        """Turn an :class:`~CardiacMTLLib.pipeline.AnalysisResult` of the loaded cine into nodes."""
        if self.cine is None or result.cine is not self.cine:
            if self.cine is None or result.labels.shape[1:] != self.cine.data.shape[1:]:
                self.load_cine(result.cine)
            self.cine = result.cine
        if result.labels.shape != self.cine.data.shape:
            raise CardiacInputError(
                f"labels of shape {result.labels.shape} do not match the cine {self.cine.data.shape}"
            )
        self._remove_observers()
        for node in self._all_nodes()[3:]:
            if node is not None and self.scene.IsNodePresent(node):
                self.scene.RemoveNode(node)
        self.nodes = AnalysisNodes()
        self.result = result
        self._add_segmentation_sequence(result)
        self._refresh_tables(result)
        self._add_landmarks(result)
        browser = self.cine_nodes.browser
        browser.SetAttribute(ATTRIBUTE_PREFIX + "EDIndex", str(result.ed_index))
        browser.SetAttribute(ATTRIBUTE_PREFIX + "ESIndex", str(result.es_index))
        self._mark_phases(result)
        self.set_frame(result.ed_index)
        return self.nodes

    def _mark_phases(self, result) -> None:
        for sequence in (self.cine_nodes.sequence, self.nodes.segmentation_sequence):
            for index, phase in ((result.ed_index, "ED"), (result.es_index, "ES")):
                node = sequence.GetNthDataNode(index)
                if node is not None and f"({phase})" not in node.GetName():
                    node.SetName(f"{node.GetName()} ({phase})")

    def _add_segmentation_sequence(self, result) -> None:
        matrix = self.matrix
        name = "segmentation"
        sequence = self.scene.AddNewNodeByClass("vtkMRMLSequenceNode", self.scene.GenerateUniqueName(name))
        sequence.SetIndexName(self.cine_nodes.sequence.GetIndexName())
        sequence.SetIndexUnit(self.cine_nodes.sequence.GetIndexUnit())
        sequence.SetIndexType(sequence.NumericIndex)
        for t, value in enumerate(self.cine_nodes.index_values):
            node = make_segmentation_node(
                result.labels[t], matrix, f"{name} frame {self.cine.frame_numbers[t]}"
            )
            sequence.SetDataNodeAtValue(node, value)
        browser = self.cine_nodes.browser
        browser.AddSynchronizedSequenceNode(sequence)
        browser.SetSaveChanges(sequence, False)
        self.logics.sequences.UpdateProxyNodesFromSequences(browser)
        proxy = browser.GetProxyNode(sequence)
        proxy.SetName(name)
        if proxy.GetDisplayNode() is None:
            proxy.CreateDefaultDisplayNodes()
        display = proxy.GetDisplayNode()
        if display is not None:
            display.SetOpacity2DFill(0.35)
            display.SetVisibility3D(False)  # the LV model is the 3D view's job
        self.nodes.segmentation_sequence = sequence
        self.nodes.segmentation = proxy

    def _refresh_tables(self, result) -> None:
        n = self.nodes
        n.indices = indices_table(self.scene, result.indices, n.indices)
        n.diagnosis = diagnosis_table(self.scene, result.diagnosis, n.diagnosis)
        n.criteria = criteria_table(self.scene, result.diagnosis, n.criteria)
        n.qc = qc_table(self.scene, result.qc, n.qc)
        new_curves = n.curves is None
        n.curves = volume_curve_table(self.scene, result.cine.frame_numbers, result.volume_curve_ml, n.curves)
        if new_curves:
            n.curve_chart = line_plot(
                self.scene,
                n.curves,
                "Frame",
                [f"{s} (mL)" for s in ("LV", "RV", "Myo")],
                "Volume over the cardiac cycle",
                "frame",
                "volume (mL)",
                colors={f"{k} (mL)": v for k, v in CURVE_COLORS.items()},
            )

    def _add_landmarks(self, result) -> None:
        landmarks = getattr(result, "landmarks", None) or []
        by_frame: dict[int, list[int]] = {}
        for i, landmark in enumerate(landmarks):
            by_frame.setdefault(self._frame_index(landmark), []).append(i)
        matrix = self.matrix
        for frame, members in sorted(by_frame.items()):
            node = self.scene.AddNewNodeByClass(
                "vtkMRMLMarkupsFiducialNode",
                self.scene.GenerateUniqueName(f"landmarks frame {self.cine.frame_numbers[frame]}"),
            )
            node.SetAttribute(ATTRIBUTE_PREFIX + "frame", str(frame))
            if node.GetDisplayNode() is None:
                node.CreateDefaultDisplayNodes()
            for i in members:
                landmark = landmarks[i]
                ras = (matrix @ np.append(np.asarray(landmark["ijk"], dtype=float), 1.0))[:3]
                point = node.AddControlPoint(
                    float(ras[0]), float(ras[1]), float(ras[2]), str(landmark["label"])
                )
                node.SetNthControlPointDescription(point, f"slice {landmark.get('slice')}")
                self._points[(node.GetID(), point)] = landmark_key(landmark)
            self._observe(node)
            self.nodes.landmarks[frame] = node

    def _frame_index(self, landmark: dict) -> int:
        """Landmarks name frames by frame number (as in ``cine.frame_numbers``)."""
        frame = landmark.get("frame")
        if frame in self.cine.frame_numbers:
            return self.cine.frame_numbers.index(frame)
        return int(frame)

    # ---- edits -> results
    def _observe(self, node) -> None:
        slicer = slicer_module()
        markups = slicer.vtkMRMLMarkupsNode
        node_id = node.GetID()

        def started(caller, event):
            self._interacting.add(node_id)

        def ended(caller, event):
            self._interacting.discard(node_id)
            self.apply_landmark_edits(node)

        def modified(caller, event):
            if node_id not in self._interacting:
                self.apply_landmark_edits(node)

        for event, callback in (
            (markups.PointStartInteractionEvent, started),
            (markups.PointEndInteractionEvent, ended),
            (markups.PointModifiedEvent, modified),
        ):
            self._observers.append((node, node.AddObserver(event, callback)))

    def _remove_observers(self) -> None:
        for node, tag in self._observers:
            node.RemoveObserver(tag)
        self._observers = []
        self._interacting = set()

    def landmarks_from_scene(self) -> list[dict]:
        """``result.landmarks`` with the positions the markups hold now; moved points are marked ``edited``."""
        landmarks = copy.deepcopy(getattr(self.result, "landmarks", None) or [])
        inverse = np.linalg.inv(self.matrix)
        for (node_id, point), key in self._points.items():
            node = self.scene.GetNodeByID(node_id)
            index = _find(landmarks, key)
            if node is None or point >= node.GetNumberOfControlPoints() or index is None:
                continue
            ras = np.zeros(3)
            node.GetNthControlPointPosition(point, ras)
            ijk = (inverse @ np.append(ras, 1.0))[:3]
            landmark = landmarks[index]
            if np.allclose(ijk, landmark["ijk"], atol=1e-3):
                continue
            landmark["ijk"] = [round(float(v), 4) for v in ijk]
            landmark["ras"] = [round(float(v), 4) for v in (self.cine.affine @ np.append(ijk, 1.0))[:3]]
            landmark["edited"] = True
        return landmarks

    def apply_landmark_edits(self, node=None):
        """Read the markups back into the result, recompute what depends on them, refresh the nodes.

        Returns the updated result (or the unchanged one when no point moved).
        """
        if self._updating or self.result is None:
            return self.result
        landmarks = self.landmarks_from_scene()
        if landmarks == (getattr(self.result, "landmarks", None) or []):
            return self.result
        updater = self.landmark_updater
        if updater is None:
            from CardiacMTLLib.analysis.landmarks.edits import update_landmarks as updater
        self._updating = True
        try:
            updated = updater(self.result, landmarks)
            self.result = updated if updated is not None else self.result
            if getattr(self.result, "landmarks", None) is not landmarks and updated is None:
                self.result.landmarks = landmarks
            self._refresh_tables(self.result)
            self._sync_markups(self.result)
        finally:
            self._updating = False
        for listener in list(self._listeners):
            listener(self.result)
        return self.result

    def _sync_markups(self, result) -> None:
        """Positions and labels of the markups from ``result.landmarks`` (an updater may refine them)."""
        landmarks = getattr(result, "landmarks", None) or []
        matrix = self.matrix
        for (node_id, point), key in self._points.items():
            node = self.scene.GetNodeByID(node_id)
            index = _find(landmarks, key)
            if node is None or index is None:
                continue
            landmark = landmarks[index]
            ras = (matrix @ np.append(np.asarray(landmark["ijk"], dtype=float), 1.0))[:3]
            current = np.zeros(3)
            node.GetNthControlPointPosition(point, current)
            if not np.allclose(current, ras, atol=1e-3):
                node.SetNthControlPointPosition(point, float(ras[0]), float(ras[1]), float(ras[2]))
            label = str(landmark["label"]) + (" (edited)" if landmark.get("edited") else "")
            if node.GetNthControlPointLabel(point) != label:
                node.SetNthControlPointLabel(point, label)

    def landmark_point(self, landmark: int):
        """``(markups node, control point)`` showing ``result.landmarks[landmark]``, or ``None``."""
        key = landmark_key(self.result.landmarks[landmark])
        for (node_id, point), known in self._points.items():
            if known == key:
                return self.scene.GetNodeByID(node_id), point
        return None

    def landmark_frame(self, landmark: int) -> int:
        """Position on the time axis of the frame ``result.landmarks[landmark]`` belongs to."""
        return self._frame_index(self.result.landmarks[landmark])

    def labels_from_scene(self) -> np.ndarray:
        """The segmentation sequence as labels (frames, slices, rows, cols), e.g. after manual edits."""
        shape = self.cine.data.shape[1:]
        sequence = self.nodes.segmentation_sequence
        return np.stack(
            [
                labels_from_segmentation(sequence.GetNthDataNode(t), shape, self.matrix)
                for t in range(sequence.GetNumberOfDataNodes())
            ]
        )
