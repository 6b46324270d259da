"""Landmarks as **named** markups control points, one fiducial node per frame, and their positions back.

A landmark dict (``label``, ``frame``, ``slice``, ``ijk``, ``ras``; see ``CardiacMTLLib.io.landmarks``) is
placed from its voxel coordinates (``ijk``) through the node's IJK-to-RAS matrix; a point the user moved
is written back as ``ijk`` and as ``ras`` in millimetres (the nodes' IJK-to-RAS, ``cine.ras_affine``) and
marked ``edited``. Points are tied to landmarks by :func:`landmark_key` (label, frame, slice), as an
update may reorder the list, and known by their control point **ID**, which stays with the point when the
user deletes another one (indices shift; a deleted landmark keeps its last position).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from CardiacMTLLib.errors import CardiacError
from CardiacMTLLib.scene.nodes import ATTRIBUTE_PREFIX, slicer_module

# (markups node id, control point id) -> landmark key
PointKeys = dict[tuple[str, str], tuple]


def landmark_key(landmark: dict) -> tuple:
    """What names a landmark across edits: label, frame and slice (its place in the list may change)."""
    slice_index = landmark.get("slice")
    return (str(landmark["label"]), int(landmark["frame"]), None if slice_index is None else int(slice_index))


def find_landmark(landmarks: list[dict], key: tuple) -> int | None:
    """Index in ``landmarks`` of the landmark named ``key``, or ``None``."""
    return next((i for i, lm in enumerate(landmarks) if landmark_key(lm) == key), None)


def _ras(matrix: np.ndarray, landmark: dict) -> np.ndarray:
    return (matrix @ np.append(np.asarray(landmark["ijk"], dtype=float), 1.0))[:3]


def add_landmark_markups(
    scene,
    landmarks: list[dict],
    matrix: np.ndarray,
    frame_index: Callable[[dict], int],
    frame_numbers: list[int],
) -> tuple[dict[int, object], PointKeys]:
    """One markups fiducial node per frame holding that frame's landmarks as named control points.

    ``frame_index(landmark)`` is the landmark's position on the time axis; ``matrix`` the IJK-to-RAS of
    the cine's nodes. Returns (node by frame position, which landmark each control point shows).
    """
    by_frame: dict[int, list[int]] = {}
    for i, landmark in enumerate(landmarks):
        by_frame.setdefault(frame_index(landmark), []).append(i)
    nodes, points = {}, {}
    for frame, members in sorted(by_frame.items()):
        node = scene.AddNewNodeByClass(
            "vtkMRMLMarkupsFiducialNode",
            scene.GenerateUniqueName(f"landmarks frame {frame_numbers[frame]}"),
        )
        node.SetAttribute(ATTRIBUTE_PREFIX + "frame", str(frame))
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
        for i in members:
            landmark = landmarks[i]
            ras = _ras(matrix, landmark)
            point = node.AddControlPoint(float(ras[0]), float(ras[1]), float(ras[2]), str(landmark["label"]))
            node.SetNthControlPointDescription(point, f"slice {landmark.get('slice')}")
            points[(node.GetID(), node.GetNthControlPointID(point))] = landmark_key(landmark)
        nodes[frame] = node
    return nodes, points


def control_point(scene, node_id: str, point_id: str):
    """``(node, index)`` of the control point ``point_id`` of markups node ``node_id``, or ``None`` when
    the node or the point was deleted."""
    node = scene.GetNodeByID(node_id)
    index = -1 if node is None else node.GetNthControlPointIndexByID(point_id)
    return None if index < 0 else (node, index)


def landmarks_from_markups(scene, landmarks: list[dict], points: PointKeys, matrix: np.ndarray) -> list[dict]:
    """A copy of ``landmarks`` with the positions the markups hold now; moved points are marked ``edited``.

    ``matrix`` is the nodes' IJK-to-RAS, the cine's voxel-to-millimetre map (the landmarks' ``ras``).
    """
    landmarks = copy.deepcopy(landmarks)
    inverse = np.linalg.inv(matrix)
    for (node_id, point_id), key in points.items():
        found, index = control_point(scene, node_id, point_id), find_landmark(landmarks, key)
        if found is None or index is None:
            continue
        node, point = found
        ras = np.zeros(3)
        node.GetNthControlPointPosition(point, ras)
        ijk = (inverse @ np.append(ras, 1.0))[:3]
        landmark = landmarks[index]
        if np.allclose(ijk, landmark["ijk"], atol=1e-3):
            continue
        landmark["ijk"] = [round(float(v), 4) for v in ijk]
        landmark["ras"] = [round(float(v), 4) for v in ras]
        landmark["edited"] = True
    return landmarks


def sync_markups(scene, landmarks: list[dict], points: PointKeys, matrix: np.ndarray) -> None:
    """Positions and labels of the markups from ``landmarks`` (an update may refine them); an edited
    landmark's label ends in ``(edited)``."""
    for (node_id, point_id), key in points.items():
        found, index = control_point(scene, node_id, point_id), find_landmark(landmarks, key)
        if found is None or index is None:
            continue
        node, point = found
        landmark = landmarks[index]
        ras = _ras(matrix, landmark)
        current = np.zeros(3)
        node.GetNthControlPointPosition(point, current)
        if not np.allclose(current, ras, atol=1e-3):
            node.SetNthControlPointPosition(point, float(ras[0]), float(ras[1]), float(ras[2]))
        label = str(landmark["label"]) + (" (edited)" if landmark.get("edited") else "")
        if node.GetNthControlPointLabel(point) != label:
            node.SetNthControlPointLabel(point, label)


def write_markups_json(node, path) -> None:
    """Write markups ``node`` to ``path`` in Slicer's markups JSON (``.mrk.json``) with a storage node of its
    own: the node's storage (what a scene save writes, and where) is left as it was."""
    storage = slicer_module().vtkMRMLMarkupsJsonStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise CardiacError(f"{path}: the landmarks of {node.GetName()!r} could not be written")
