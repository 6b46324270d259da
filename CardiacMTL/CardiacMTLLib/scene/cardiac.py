"""One study in one scene: the cine, an analysis result as nodes, and the user's edits back as results.

:class:`CardiacScene` is the scene logic the desktop module, the browser app and the tests share: it
shows a :class:`~CardiacMTLLib.types.AnalysisResult` with SlicerHeart's conventions (a cine as a volume
sequence with a browser, per-frame results as sequences synchronised with it, landmarks as named markups,
measurements in ``Metric`` / ``Value`` / ``Unit`` tables) and closes the edit round-trips: a moved landmark
is read back, what depends on it is recomputed, and the tables, markups and listeners are refreshed; a
segmentation corrected with Segment Editor (on any frame, kept across frame changes) is read back by
:meth:`CardiacScene.update_from_segmentation`, which recomputes every result from the edited frames with
:func:`CardiacMTLLib.pipeline.remeasure`.

The nodes are made by ``sequences.py`` (the cine), ``segmentation.py`` (label maps), ``tables.py``
(indices, diagnosis, QC, volume curves) and ``markups.py`` (landmarks), on the helpers of ``nodes.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from CardiacMTLLib.analysis.landmarks.edits import update_landmarks
from CardiacMTLLib.errors import CardiacError, CardiacInputError
from CardiacMTLLib.pipeline import remeasure
from CardiacMTLLib.report.bullseye import write_bullseye
from CardiacMTLLib.scene.markups import (
    PointKeys,
    add_landmark_markups,
    control_point,
    landmark_key,
    landmarks_from_markups,
    sync_markups,
)
from CardiacMTLLib.scene.nodes import ATTRIBUTE_PREFIX, ijk_to_ras, slicer_module, table_rows
from CardiacMTLLib.scene.segmentation import add_segmentation_sequence, labels_from_segmentation
from CardiacMTLLib.scene.sequences import CineNodes, ModuleLogics, add_cine, cine_from_sequence
from CardiacMTLLib.scene.strain import (
    bullseye_volume,
    chart_time_column,
    strain_curve_chart,
    strain_curve_table,
    strain_table,
)
from CardiacMTLLib.scene.tables import (
    criteria_table,
    diagnosis_table,
    indices_table,
    qc_table,
    split_metric,
    volume_curve_chart,
    volume_curve_table,
)

# names other front ends import from here (the desktop module, the browser app)
__all__ = [
    "AnalysisNodes",
    "CardiacScene",
    "ModuleLogics",
    "cine_from_sequence",
    "split_metric",
    "table_rows",
]


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
    strain: object = None  # the strain nodes, made when the scene logic was asked to (``strain_nodes``)
    strain_curves: object = None
    strain_chart: object = None
    bullseye: object = None
    landmarks: dict = field(default_factory=dict)  # frame index -> markups fiducial node


class CardiacScene:
    """One study in one scene: the cine, the analysis result as nodes, and landmark edits flowing back.

    ``landmark_updater(result, landmarks) -> result`` recomputes what depends on the landmarks (default:
    :func:`CardiacMTLLib.analysis.landmarks.edits.update_landmarks`); listeners added with
    :meth:`add_listener` are called with the new result after every edit, so a panel (Qt or web) can refresh.
    With ``strain_nodes`` a result's strain is also shown (:mod:`~CardiacMTLLib.scene.strain`: table, curve
    plot, bull's-eye image), and shown again when an edit changes it.
    """

    def __init__(
        self,
        scene,
        logics: ModuleLogics | None = None,
        landmark_updater: Callable | None = None,
        app_logic=None,
        strain_nodes: bool = False,
    ):
        self.scene = scene
        self.strain_nodes = strain_nodes
        self.logics = logics or ModuleLogics.for_scene(scene, app_logic)
        self.landmark_updater = landmark_updater or update_landmarks
        self.cine = None
        self.cine_nodes: CineNodes | None = None
        self.result = None
        self.nodes = AnalysisNodes()
        self._listeners: list[Callable] = []
        self._points: PointKeys = {}
        self._observers: list[tuple[object, int]] = []
        self._interacting: set[str] = set()
        self._updating = False
        self._shown_strain = None

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
        """Remove the nodes of the current study (cine and results) from the scene; a cine the user loaded
        (:attr:`CineNodes.borrowed`) stays, without the results."""
        self._remove_observers()
        self._remove_result_nodes()
        if self.cine_nodes is not None:
            self._remove(self.cine_nodes.owned())
            if self.cine_nodes.borrowed:
                _mark_phases(self.cine_nodes.sequence, {})
        self.forget()

    def forget(self) -> None:
        """Let go of the study without touching the scene (a scene being closed takes the nodes with it)."""
        self._remove_observers()
        self.cine = self.cine_nodes = self.result = self._shown_strain = None
        self.nodes = AnalysisNodes()
        self._points = {}

    def _remove(self, nodes) -> None:
        """Remove ``nodes`` with their display and storage nodes (the scene leaves those behind)."""
        for node in nodes:
            if node is None or not self.scene.IsNodePresent(node):
                continue
            companions = []
            if node.IsA("vtkMRMLDisplayableNode"):
                companions += [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
            if node.IsA("vtkMRMLStorableNode"):
                companions.append(node.GetStorageNode())
            self.scene.RemoveNode(node)
            for companion in companions:
                if companion is not None and self.scene.IsNodePresent(companion):
                    self.scene.RemoveNode(companion)

    def _remove_result_nodes(self) -> None:
        """Remove the nodes of the shown result; the cine's browser stops synchronising its segmentation
        first (else it makes a new proxy for the one removed)."""
        sequence = self.nodes.segmentation_sequence
        if sequence is not None and self.cine_nodes is not None:
            self.cine_nodes.browser.RemoveSynchronizedSequenceNode(sequence.GetID())
        self._remove(self._result_nodes())
        self.nodes = AnalysisNodes()

    def _result_nodes(self) -> list:
        n = self.nodes
        nodes = [n.segmentation_sequence, n.segmentation, n.indices, n.diagnosis, n.criteria, n.qc, n.curves]
        nodes += [n.strain, n.strain_curves, n.bullseye]
        for chart in (n.curve_chart, n.strain_chart):
            if chart is not None:
                nodes += [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]
                nodes.append(chart)
        nodes += list(n.landmarks.values())
        return nodes

    def _show_frame_landmarks(self, *event) -> None:
        """Only the shown frame's landmarks visible (and draggable), however the frame was chosen: here,
        with the Sequences toolbar or by playing the cine."""
        shown = self.frame
        for frame, node in self.nodes.landmarks.items():
            display = node.GetDisplayNode()
            if display is not None and bool(display.GetVisibility()) != (frame == shown):
                display.SetVisibility(frame == shown)

    def set_frame(self, index: int) -> None:
        """Show the frame at position ``index`` of the time axis (cine, segmentation and its landmarks)."""
        browser = self.cine_nodes.browser
        browser.SetSelectedItemNumber(int(index))
        self.logics.sequences.UpdateProxyNodesFromSequences(browser)
        self._show_frame_landmarks()

    @property
    def frame(self) -> int:
        return int(self.cine_nodes.browser.GetSelectedItemNumber())

    def add_listener(self, listener: Callable) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable) -> None:
        """Stop calling ``listener`` (a panel that goes away: a module reloaded)."""
        self._listeners = [known for known in self._listeners if known != listener]

    # ---- results -> nodes
    def show_result(self, result) -> AnalysisNodes:
        """Turn an :class:`~CardiacMTLLib.types.AnalysisResult` of the loaded cine into nodes."""
        if result.labels.shape != result.cine.data.shape:
            raise CardiacInputError(
                f"labels of shape {result.labels.shape} do not match the cine {result.cine.data.shape}"
            )
        if self.cine is None or not same_images(result.cine, self.cine):
            self.load_cine(result.cine)  # the result of another cine (loaded while it ran) over its own
        self.cine = result.cine  # the same images, with the size the analysis was given
        self._remove_observers()
        self._remove_result_nodes()
        self.result, self._shown_strain = result, None
        self._add_segmentation_sequence(result)
        self._refresh_tables(result)
        self._add_landmarks(result)
        self._mark_phases(result)
        self.set_frame(result.ed_index)
        return self.nodes

    def _mark_phases(self, result) -> None:
        """Name the ED and ES items of the sequences (``... (ED)``); a phase that moved loses its old tag."""
        browser = self.cine_nodes.browser
        browser.SetAttribute(ATTRIBUTE_PREFIX + "EDIndex", str(result.ed_index))
        browser.SetAttribute(ATTRIBUTE_PREFIX + "ESIndex", str(result.es_index))
        phases = {result.ed_index: "ED", result.es_index: "ES"}
        for sequence in (self.cine_nodes.sequence, self.nodes.segmentation_sequence):
            _mark_phases(sequence, phases)

    def _add_segmentation_sequence(self, result) -> None:
        sequence, proxy = add_segmentation_sequence(
            self.scene, result.labels, self.matrix, self.cine_nodes, self.cine.frame_numbers, self.logics
        )
        self.nodes.segmentation_sequence = sequence
        self.nodes.segmentation = proxy

    def _refresh_tables(self, result) -> None:
        n, edited = self.nodes, result.provenance.get("edited_frames", [])
        n.indices = indices_table(self.scene, result.indices, n.indices, edited)
        n.diagnosis = diagnosis_table(self.scene, result.diagnosis, n.diagnosis)
        n.criteria = criteria_table(self.scene, result.diagnosis, n.criteria)
        n.qc = qc_table(self.scene, result.qc, n.qc)
        new_curves = n.curves is None
        n.curves = volume_curve_table(
            self.scene, result.cine.frame_numbers, result.volume_curve_ml, n.curves, edited
        )
        if new_curves:
            n.curve_chart = volume_curve_chart(self.scene, n.curves)
        self._refresh_strain(result)

    def _refresh_strain(self, result) -> None:
        """The strain table, curves and bull's-eye of ``result`` (when asked for and the strain changed)."""
        strain = getattr(result, "strain", None)
        if not self.strain_nodes or strain is None or strain is self._shown_strain:
            return
        n = self.nodes
        n.strain = strain_table(self.scene, strain, n.strain)
        new_curves = n.strain_curves is None
        n.strain_curves = strain_curve_table(self.scene, strain, n.strain_curves)
        x = n.strain_curves.GetAttribute(ATTRIBUTE_PREFIX + "timeColumn")
        if (
            new_curves or chart_time_column(n.strain_chart) != x
        ):  # a cine with trigger times after one without
            n.strain_chart = strain_curve_chart(self.scene, n.strain_curves, n.strain_chart)
        n.bullseye = bullseye_volume(self.scene, write_bullseye(strain), n.bullseye)
        self._shown_strain = strain

    def _add_landmarks(self, result) -> None:
        landmarks = getattr(result, "landmarks", None) or []
        nodes, self._points = add_landmark_markups(
            self.scene, landmarks, self.matrix, self._frame_index, self.cine.frame_numbers
        )
        for frame, node in nodes.items():
            self._observe(node)
            self.nodes.landmarks[frame] = node
        if nodes:  # the Sequences toolbar and the cine's playback change the frame without set_frame
            browser = self.cine_nodes.browser
            tag = browser.AddObserver("ModifiedEvent", self._show_frame_landmarks)
            self._observers.append((browser, tag))

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
        landmarks = getattr(self.result, "landmarks", None) or []
        return landmarks_from_markups(self.scene, landmarks, self._points, self.matrix)

    def apply_landmark_edits(self, node=None):
        """Read the markups back into the result, recompute what depends on them, refresh the nodes.

        Returns the updated result (or the unchanged one when no point moved).
        """
        if self._updating or self.result is None:
            return self.result
        landmarks = self.landmarks_from_scene()
        if landmarks == (getattr(self.result, "landmarks", None) or []):
            return self.result
        self._updating = True
        try:
            updated = self.landmark_updater(self.result, landmarks)
            self.result = updated if updated is not None else self.result
            if getattr(self.result, "landmarks", None) is not landmarks and updated is None:
                self.result.landmarks = landmarks
            self._refresh_tables(self.result)
            sync_markups(self.scene, getattr(self.result, "landmarks", None) or [], self._points, self.matrix)
        finally:
            self._updating = False
        for listener in list(self._listeners):
            listener(self.result)
        return self.result

    def landmark_point(self, landmark: int):
        """``(markups node, control point)`` showing ``result.landmarks[landmark]``, or ``None``."""
        key = landmark_key(self.result.landmarks[landmark])
        for (node_id, point_id), known in self._points.items():
            if known == key:
                return control_point(self.scene, node_id, point_id)
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

    # ---- segmentation edits -> results
    def edits_at_stake(self) -> str | None:
        """The user's corrections of the shown result that a new analysis would replace, in words, or
        ``None``: frames whose segmentation was edited (applied with Update results or not yet) and
        landmarks moved."""
        if self.result is None:
            return None
        frames = set(self.result.provenance.get("edited_frames", []))
        if self.nodes.segmentation_sequence is not None:
            self._store_shown_segmentation()
            frames |= {self.cine.frame_numbers[t] for t in self.edited_frame_indices()}
        moved = sum(bool(landmark.get("edited")) for landmark in self.landmarks_from_scene())
        edits = (
            [f"the segmentation of frame(s) {', '.join(str(f) for f in sorted(frames))}"] if frames else []
        )
        edits += [f"{moved} moved landmark(s)"] if moved else []
        return " and ".join(edits) or None

    def _store_shown_segmentation(self) -> None:
        """The displayed frame's segmentation (Segment Editor paints the proxy) into the sequence."""
        browser, proxy = self.cine_nodes.browser, self.nodes.segmentation
        if proxy is not None and browser.GetSaveChanges(self.nodes.segmentation_sequence):
            self.logics.sequences.UpdateSequencesFromProxyNodes(browser, proxy)

    def edited_frame_indices(self, labels: np.ndarray | None = None) -> list[int]:
        """Positions on the time axis whose segmentation in the scene differs from the shown result's."""
        labels = self.labels_from_scene() if labels is None else labels
        return [t for t in range(labels.shape[0]) if not np.array_equal(labels[t], self.result.labels[t])]

    def update_from_segmentation(self, classifier=None):
        """Every result again from the segmentation as the user corrected it (the "Update results" action).

        The label maps are read back from the segmentation sequence (the displayed frame's edits included);
        the frames whose labels changed are recomputed with :func:`~CardiacMTLLib.pipeline.remeasure`
        (indices, QC, diagnosis, landmarks, AHA values; ``provenance["edited_frames"]`` names them), then the
        tables, the curve plot, the markups and the listeners are refreshed. Returns the new result, or the
        shown one when no label changed.
        """
        if self.result is None or self.nodes.segmentation_sequence is None:
            raise CardiacError("nothing to update: run Segment & diagnose first")
        self._store_shown_segmentation()
        labels = self.labels_from_scene()
        changed = self.edited_frame_indices(labels)
        if not changed:
            return self.result
        frames = [self.cine.frame_numbers[t] for t in changed]
        updated = remeasure(self.result, labels, frames, classifier=classifier)
        shown = self.frame
        self._remove_observers()
        self._remove(self.nodes.landmarks.values())
        self.nodes.landmarks = {}
        self.result = updated
        self._refresh_tables(updated)
        self._add_landmarks(updated)
        self._mark_phases(updated)
        self.set_frame(shown)
        for listener in list(self._listeners):
            listener(self.result)
        return self.result


def same_images(a, b) -> bool:
    """Whether two cines hold the same images on the same grid (a copy with another height or weight does)."""
    if a is b or a.data is b.data:
        return True
    return (
        a.data.shape == b.data.shape
        and np.allclose(a.affine, b.affine)
        and np.allclose(a.spacing_mm, b.spacing_mm)
        and np.array_equal(a.data, b.data)
    )


def _mark_phases(sequence, phases: dict[int, str]) -> None:
    """Tag the items of ``sequence`` at the positions of ``phases`` (``{index: "ED"}``), untag the others."""
    for index in range(sequence.GetNumberOfDataNodes()):
        node = sequence.GetNthDataNode(index)
        name = node.GetName().replace(" (ED)", "").replace(" (ES)", "")
        node.SetName(f"{name} ({phases[index]})" if index in phases else name)
