"""The cine in the scene, as SlicerHeart shows one: a volume **sequence** with a sequence browser.

:func:`add_cine` turns a :class:`~CardiacMTLLib.types.Cine` into the sequence (one volume node per frame,
indexed by trigger time in ms when known, else by frame number), its browser and the displayed proxy
volume; :func:`cine_from_sequence` reads a sequence a user loaded back into a ``Cine``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.scene.nodes import (
    ATTRIBUTE_PREFIX,
    array_from_volume_node,
    ijk_to_ras,
    make_volume_node,
    node_ijk_to_ras,
    slicer_module,
)
from CardiacMTLLib.types import Cine


@dataclass
class ModuleLogics:
    """The two Slicer module logics the scene logic needs (Sequences, Segmentations).

    Inside Slicer they are the application's; on slicer-core they are created once for the scene.
    """

    sequences: object
    segmentations: object

    @classmethod
    def for_scene(cls, scene, app_logic=None) -> ModuleLogics:
        """The application's logics inside Slicer, or new ones registered with ``scene`` on slicer-core."""
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
    """The cine in the scene: ``sequence`` of volumes, its ``browser`` and the displayed ``volume`` (proxy).

    ``borrowed`` are the nodes of a cine the user loaded (:func:`borrow_cine`), which the results are shown
    on where they are and which are never removed.
    """

    sequence: object
    browser: object
    volume: object
    index_values: list[str]
    borrowed: tuple = ()

    def owned(self) -> list:
        """The nodes made for the cine, to remove with it: the browser before its sequence and that before
        its proxy (a browser that outlives a proxy makes a new one, left in the scene untracked)."""
        nodes = (self.browser, self.sequence, self.volume)
        return [node for node in nodes if not any(node is mine for mine in self.borrowed)]


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


def borrow_cine(scene, sequence, logics: ModuleLogics) -> CineNodes:
    """The nodes of a volume sequence the user loaded (Add Data, the DICOM browser, a saved scene), to show
    results on: its own browser and proxy volume, so that the Sequences toolbar the user already has drives
    the results too and nothing is copied. A browser is made when no browser plays the sequence."""
    browser = logics.sequences.GetFirstBrowserNodeForSequenceNode(sequence)
    mine = browser is None or browser.GetMasterSequenceNode() is not sequence
    if mine:  # not shown, or shown as another sequence's companion (whose frames are not this one's)
        name = scene.GenerateUniqueName(f"{sequence.GetName() or 'cine'} browser")
        browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", name)
        browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    logics.sequences.UpdateProxyNodesFromSequences(browser)
    volume = browser.GetProxyNode(sequence)
    if volume.GetDisplayNode() is None:
        volume.CreateDefaultDisplayNodes()
    values = [sequence.GetNthIndexValue(n) for n in range(sequence.GetNumberOfDataNodes())]
    borrowed = (sequence,) if mine else (sequence, browser, volume)
    return CineNodes(sequence, browser, volume, values, borrowed)


def _auto_window_level(volume, data: np.ndarray) -> None:
    display = volume.GetDisplayNode()
    if display is None:
        return
    low, high = np.percentile(data, [1.0, 99.5])
    display.AutoWindowLevelOff()
    display.SetWindowLevel(float(max(high - low, 1.0)), float((high + low) / 2))


def cine_from_sequence(sequence_node, source: str = "") -> Cine:
    """A :class:`~CardiacMTLLib.types.Cine` from a volume sequence node (what a user loaded in Slicer).

    Frames are the sequence's data nodes in index order; trigger times come from a ``time`` index in ms
    (or s). Every frame must have the same voxel grid.
    """
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
