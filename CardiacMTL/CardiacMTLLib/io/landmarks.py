"""Landmark records and their files: ``landmarks.json`` and Slicer's ``.mrk.json``, read and written in one place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError

RV_INSERT_ANTERIOR = "RV_INSERT_ANTERIOR"
RV_INSERT_INFERIOR = "RV_INSERT_INFERIOR"
MV_HINGE_1 = "MV_HINGE_1"
MV_HINGE_2 = "MV_HINGE_2"
SAX_LABELS = (RV_INSERT_ANTERIOR, RV_INSERT_INFERIOR)
LAX_LABELS = (MV_HINGE_1, MV_HINGE_2)
ALL_LABELS = SAX_LABELS + LAX_LABELS
MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
    "markups-schema-v1.0.3.json#"
)


def make_point(label: str, frame: int, slice_index: int | None, ijk, affine, source: str = "") -> dict:
    """A landmark dict with ``ras`` computed from ``ijk`` through ``affine``, the voxel-to-millimetre map
    (:attr:`~CardiacMTLLib.types.Cine.ras_affine`: Slicer's RAS, also for a file whose affine lacks the
    spacing)."""
    ijk = [float(v) for v in ijk]
    ras = np.asarray(affine, dtype=float) @ np.array(ijk + [1.0])
    return {
        "label": label,
        "frame": int(frame),
        "slice": None if slice_index is None else int(slice_index),
        "ijk": [round(v, 3) for v in ijk],
        "ras": [round(float(v), 3) for v in ras[:3]],
        "edited": False,
        "source": source,
    }


def landmark_key(point: dict) -> tuple:
    return (point["label"], int(point["frame"]), None if point.get("slice") is None else int(point["slice"]))


def complete_point(point: dict, affine: np.ndarray, shape_kji: tuple[int, int, int], where: str = "") -> dict:
    """Check a landmark given by a user or a file and fill in ``ijk`` from ``ras`` or the other way round,
    through ``affine``, the voxel-to-millimetre map (:attr:`~CardiacMTLLib.types.Cine.ras_affine`)."""
    if not isinstance(point, dict) or "label" not in point or "frame" not in point:
        raise CardiacInputError(f"{where}: each landmark needs a label and a frame, got {point!r}")
    if point["label"] not in ALL_LABELS:
        raise CardiacInputError(
            f"{where}: unknown landmark label {point['label']!r}; expected one of {ALL_LABELS}"
        )
    affine = np.asarray(affine, dtype=float)
    if point.get("ijk") is not None:
        ijk = np.asarray(point["ijk"], dtype=float)
    elif point.get("ras") is not None:
        ijk = (np.linalg.inv(affine) @ np.append(np.asarray(point["ras"], dtype=float), 1.0))[:3]
    else:
        raise CardiacInputError(f"{where}: landmark {point['label']} has neither ijk nor ras coordinates")
    if ijk.shape != (3,) or not np.all(np.isfinite(ijk)):
        raise CardiacInputError(f"{where}: landmark {point['label']} has invalid coordinates {point}")
    limits = np.array([shape_kji[2], shape_kji[1], shape_kji[0]], dtype=float) - 0.5
    if np.any(ijk < -0.5) or np.any(ijk > limits):
        raise CardiacInputError(
            f"{where}: landmark {point['label']} (frame {point['frame']}) at ijk {np.round(ijk, 2).tolist()} "
            f"lies outside the image (i, j, k up to {limits.tolist()})"
        )
    slice_index = point.get("slice")
    if slice_index is None and point["label"] in SAX_LABELS:
        slice_index = int(round(float(ijk[2])))
    out = make_point(
        point["label"], int(point["frame"]), slice_index, ijk, affine, source=point.get("source", "")
    )
    out["edited"] = bool(point.get("edited", False))
    return out


# --------------------------------------------------------------------------------------------------
# files: landmarks.json and the Slicer markups landmarks.mrk.json


def landmarks_document(landmarks: list[dict]) -> list[dict]:
    """The plain ``landmarks.json`` list (``ras`` in RAS millimetres, ``ijk`` voxel indices of the input)."""
    keys = ("label", "frame", "slice", "ijk", "ras", "edited", "source")
    return [{k: p.get(k) for k in keys} for p in landmarks]


def markups_document(landmarks: list[dict]) -> dict:
    """A 3D Slicer markups document (schema v1.0.3): one fiducial list per landmark type.

    Positions are in LPS, as Slicer writes its own markups files (the scene is RAS; Slicer converts on
    load). Each control point is labelled with the landmark type; its ``id`` and ``description`` carry the
    frame and slice, and the description says whether a person edited it.
    """
    markups = []
    for label in ALL_LABELS:
        points = [p for p in landmarks if p["label"] == label]
        if not points:
            continue
        control_points = []
        for n, p in enumerate(points, start=1):
            x, y, z = p["ras"]
            where = f"frame {p['frame']}" + ("" if p.get("slice") is None else f" slice {p['slice']}")
            control_points.append(
                {
                    "id": f"{n}",
                    "label": label,
                    "description": f"{where}; {'edited by a person' if p.get('edited') else 'automatic'}",
                    "associatedNodeID": "",
                    "position": [-x, -y, z],
                    "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
                    "selected": True,
                    "locked": False,
                    "visibility": True,
                    "positionStatus": "defined",
                }
            )
        markups.append(
            {
                "type": "Fiducial",
                "name": label,
                "coordinateSystem": "LPS",
                "coordinateUnits": "mm",
                "locked": False,
                "fixedNumberOfControlPoints": False,
                "labelFormat": "%N-%d",
                "lastUsedControlPointNumber": len(points),
                "controlPoints": control_points,
                "measurements": [],
            }
        )
    return {"@schema": MARKUPS_SCHEMA, "markups": markups}


_WHERE_RE = re.compile(r"frame\s+(-?\d+)(?:\s+slice\s+(\d+))?")


def _parse_where(description: str) -> tuple[int | None, int | None, bool]:
    """``(frame, slice, edited)`` from a control point description written by :func:`markups_document`."""
    match = _WHERE_RE.search(description or "")
    if not match:
        return None, None, False
    slice_index = int(match.group(2)) if match.group(2) is not None else None
    return int(match.group(1)), slice_index, "edited" in description and "automatic" not in description


def read_landmarks_file(path: str | Path) -> list[dict]:
    """Landmarks from a ``landmarks.json`` list or a Slicer markups ``.mrk.json`` written by this module
    (or edited in Slicer: the control point label is the landmark type, the description names the frame
    and slice; LPS and RAS positions are both accepted)."""
    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: no such landmarks file")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CardiacInputError(f"{path}: not a readable JSON landmarks file ({e})") from e
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("markups"), list):
        points = []
        for markup in document["markups"]:
            system = str(markup.get("coordinateSystem", "LPS")).upper()
            if system not in ("LPS", "RAS"):
                raise CardiacInputError(f"{path}: coordinateSystem must be LPS or RAS, got {system!r}")
            for cp in markup.get("controlPoints", []):
                frame, slice_index, edited = _parse_where(cp.get("description", ""))
                if frame is None:
                    raise CardiacInputError(
                        f"{path}: control point {cp.get('label')!r} has no 'frame N [slice K]' in its description"
                    )
                x, y, z = (float(v) for v in cp["position"])
                ras = [-x, -y, z] if system == "LPS" else [x, y, z]
                label = cp.get("label") or markup.get("name")
                points.append(
                    {"label": label, "frame": frame, "slice": slice_index, "ras": ras, "edited": edited}
                )
        return points
    raise CardiacInputError(f"{path}: expected a list of landmarks or a Slicer markups document")


def write_landmark_files(landmarks: list[dict], folder: Path) -> None:
    """``landmarks.json`` and ``landmarks.mrk.json`` into ``folder`` (inside a staged results folder)."""
    folder = Path(folder)
    (folder / "landmarks.json").write_text(json.dumps(landmarks_document(landmarks), indent=1))
    (folder / "landmarks.mrk.json").write_text(json.dumps(markups_document(landmarks), indent=1))


def insertions_of_frame(landmarks: list[dict], frame: int) -> dict[int, tuple]:
    """``{slice: ((row, col) anterior, (row, col) inferior)}`` of one frame, for the AHA segments."""
    by_slice: dict[int, dict] = {}
    for p in landmarks:
        if p["label"] in SAX_LABELS and p["frame"] == frame and p.get("slice") is not None:
            by_slice.setdefault(int(p["slice"]), {})[p["label"]] = (p["ijk"][1], p["ijk"][0])
    return {k: (v[RV_INSERT_ANTERIOR], v[RV_INSERT_INFERIOR]) for k, v in by_slice.items() if len(v) == 2}
