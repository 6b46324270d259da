"""Label maps as segmentation nodes and back: one segment per structure of ``types.Label``.

A frame's label map (0 bg, 1 RV, 2 Myo, 3 LV) becomes a segmentation node whose three segments share one
labelmap, named and coloured from ``types.Label``; a cine's label maps become a segmentation sequence
synchronised with the cine's browser that keeps the user's edits of every frame (Segment Editor paints
the displayed node, and the browser saves it into the frame's item). A segmentation the user edited is
read back on the cine's voxel grid.
"""

from __future__ import annotations

import numpy as np

from CardiacMTLLib.errors import CardiacError, CardiacInputError
from CardiacMTLLib.scene.nodes import array_from_image_data, image_data_from_array, slicer_module, vtk_matrix
from CardiacMTLLib.scene.sequences import CineNodes, ModuleLogics
from CardiacMTLLib.types import STRUCTURES

LABEL_NAMES = {int(v): v.display_name for v in STRUCTURES}
LABEL_SEGMENT_IDS = {int(v): v.display_name.replace(" ", "_") for v in STRUCTURES}  # "RV_cavity", ...
LABEL_COLORS = {int(v): v.colour_rgb for v in STRUCTURES}


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
    image.SetImageToWorldMatrix(vtk_matrix(matrix))
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


def segment_value(segmentation, n: int) -> int | None:
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
        value = segment_value(segmentation, n)
        if value is not None:
            ids.InsertNextValue(segmentation.GetNthSegmentID(n))
            values.InsertNextValue(value)
    slices, rows, cols = reference_shape
    if ids.GetNumberOfValues() == 0:
        return np.zeros(reference_shape, dtype=np.uint8)
    reference = slicer.vtkOrientedImageData()
    reference.SetExtent(0, cols - 1, 0, rows - 1, 0, slices - 1)
    reference.SetImageToWorldMatrix(vtk_matrix(matrix))
    merged = slicer.vtkOrientedImageData()
    if not segmentation_node.GenerateMergedLabelmapForAllSegments(merged, 0, reference, ids, values):
        raise CardiacInputError(f"{segmentation_node.GetName()}: could not build a label map of its segments")
    if tuple(merged.GetDimensions()) != (cols, rows, slices):
        raise CardiacInputError(
            f"{segmentation_node.GetName()}: label map of {merged.GetDimensions()} voxels, expected {(cols, rows, slices)}"
        )
    return array_from_image_data(merged).astype(np.uint8)


def add_segmentation_sequence(
    scene,
    labels: np.ndarray,
    matrix: np.ndarray,
    cine_nodes: CineNodes,
    frame_numbers: list[int],
    logics: ModuleLogics,
    name: str = "segmentation",
) -> tuple[object, object]:
    """The label maps ``labels`` (frames, slices, rows, cols) as a segmentation sequence synchronised with
    the cine's browser; returns (the sequence, its displayed proxy segmentation node)."""
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", scene.GenerateUniqueName(name))
    sequence.SetIndexName(cine_nodes.sequence.GetIndexName())
    sequence.SetIndexUnit(cine_nodes.sequence.GetIndexUnit())
    sequence.SetIndexType(sequence.NumericIndex)
    for t, value in enumerate(cine_nodes.index_values):
        node = make_segmentation_node(labels[t], matrix, f"{name} frame {frame_numbers[t]}")
        sequence.SetDataNodeAtValue(node, value)
    browser = cine_nodes.browser
    browser.AddSynchronizedSequenceNode(sequence)
    # Segment Editor paints the displayed (proxy) node; saving changes writes each edit into the frame's
    # item, so a correction is kept when the user moves to another frame
    browser.SetSaveChanges(sequence, True)
    logics.sequences.UpdateProxyNodesFromSequences(browser)
    proxy = browser.GetProxyNode(sequence)
    proxy.SetName(name)
    if proxy.GetDisplayNode() is None:
        proxy.CreateDefaultDisplayNodes()
    display = proxy.GetDisplayNode()
    if display is not None:
        display.SetOpacity2DFill(0.35)
        display.SetVisibility3D(False)  # the LV model is the 3D view's job
    return sequence, proxy


def set_segment_mask(segmentation_node, label: int, mask: np.ndarray, matrix: np.ndarray) -> None:
    """Replace structure ``label``'s segment of ``segmentation_node`` by ``mask`` (slices, rows, cols) on the
    grid ``matrix``, as a Segment Editor effect does (``SetBinaryLabelmapToSegment``, mode replace)."""
    slicer = slicer_module()
    image = slicer.vtkOrientedImageData()
    image.ShallowCopy(image_data_from_array(np.asarray(mask).astype(np.uint8)))
    image.SetImageToWorldMatrix(vtk_matrix(matrix))
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.SetBinaryLabelmapToSegment(
        image, segmentation_node, LABEL_SEGMENT_IDS[label], logic.MODE_REPLACE
    ):
        raise CardiacError(f"segment {LABEL_SEGMENT_IDS[label]} of {segmentation_node.GetName()!r} not set")


def read_dicom_seg(path) -> tuple[np.ndarray, np.ndarray]:
    """A DICOM Segmentation (the library's ``seg_ED.dcm`` or another program's) as ``(labels, matrix)``: the
    label map (slices, rows, cols) with 1 RV, 2 Myo, 3 LV taken from the segments' labels (names of
    ``types.Label``) and its IJK-to-RAS matrix, read with highdicom on the SEG's own geometry."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(path))
        numbers = {}
        for item in seg.SegmentSequence:
            value = next((v for v, name in LABEL_NAMES.items() if name == str(item.SegmentLabel)), None)
            if value is not None:
                numbers[int(item.SegmentNumber)] = value
        if not numbers:
            raise CardiacInputError(
                f"{path}: no segment of the SEG is a cardiac structure (labels "
                f"{[str(s.SegmentLabel) for s in seg.SegmentSequence]}; expected {sorted(LABEL_NAMES.values())})"
            )
        volume = seg.get_volume(segment_numbers=sorted(numbers), combine_segments=True, relabel=False)
    except (OSError, ValueError, AttributeError, RuntimeError) as exc:
        raise CardiacInputError(f"{path}: not a readable DICOM Segmentation ({exc})") from exc
    found = np.asarray(volume.array)
    labels = np.zeros(found.shape, dtype=np.uint8)
    for number, value in numbers.items():
        labels[found == number] = value
    # highdicom's affine maps (slice, row, column) to patient LPS; a node's matrix maps (column, row, slice)
    # to RAS
    permute = np.zeros((4, 4))
    permute[0, 2] = permute[1, 1] = permute[2, 0] = permute[3, 3] = 1.0
    matrix = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(volume.affine, dtype=float) @ permute
    return labels, matrix


def load_dicom_seg(scene, path, name: str | None = None):
    """A DICOM Segmentation file as a segmentation node of ``scene`` (three segments named, coloured and
    valued as the analysis's own), in the patient space of its source images."""
    from pathlib import Path

    labels, matrix = read_dicom_seg(path)
    node = make_segmentation_node(labels, matrix, name or Path(str(path)).stem)
    node = scene.AddNode(node)
    node.CreateDefaultDisplayNodes()
    return node
