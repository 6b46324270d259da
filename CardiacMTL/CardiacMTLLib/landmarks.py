"""Cardiac landmarks: RV insertion points on short-axis slices, their files, and user edits.

The RV insertion points are where the RV free wall meets the interventricular septum. On a label map
they are the two ends of the stretch of the LV epicardium that the RV cavity touches: this module derives
them from any label map, so the same function gives the training truth (expert labels) and the shipped
detector (the segmentation network's labels). Points are dicts ``{"label", "frame", "slice", "ijk",
"ras", "edited", "source"}`` with ``ijk`` the input image's voxel index ``(i, j, k)`` = (column, row,
slice) and ``ras`` world millimetres (RAS, as in the NIfTI affine and the Slicer scene). They are written
as a plain ``landmarks.json`` list and as a 3D Slicer markups file (``landmarks.mrk.json``: one fiducial
list per landmark type, positions in LPS as Slicer writes its own files). :func:`update_landmarks` takes
points a person moved and recomputes what depends on them (the AHA 16-segment wall thickness).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import CardiacInputError

RV_CAVITY, LV_MYOCARDIUM, LV_CAVITY = 1, 2, 3
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
# Rays from the LV centroid on which the epicardium is followed (0.5 degree apart).
INSERTION_RAYS = 720
# The RV touches the epicardium where its cavity lies within this many pixels outside the epicardial
# contour (the 0.5 level of both masks): 0 for masks that share their border, so a little over half a
# pixel tolerates the one-pixel gaps of drawn labels without running far along a diverging free wall.
CONTACT_PIXELS = 0.75
# On a network's segmentation (its RV widened by rv_contact_mask) the RV may stop a pixel short of the
# septum; the detector tolerates one pixel there. Chosen with RV_CONTACT_PROBABILITY on the ACDC
# validation patients and the biv-me expert points (landmark model card).
NETWORK_CONTACT_PIXELS = 1.0
# A slice needs this many pixels of LV (cavity + myocardium) and of RV cavity to have insertion points.
MIN_STRUCTURE_PIXELS = 10
# The shortest stretch of contact (degrees) taken as a septum rather than a touching corner.
MIN_CONTACT_DEG = 10.0


# --------------------------------------------------------------------------------------------------
# RV insertion points from a label map


def longest_circular_run(flags: np.ndarray) -> tuple[int, int]:
    """``(first index, length)`` of the longest run of true values in a circular sequence (runs may wrap
    around its end); ``(0, 0)`` when no value is true, ``(0, n)`` when all are."""
    flags = np.asarray(flags, dtype=bool)
    n = flags.size
    if flags.all():
        return 0, n
    start = int(np.argmin(flags))  # a false value: no run wraps past it
    rolled = np.append(np.roll(flags, -start), False)
    best_len, best_start, run_start = 0, 0, None
    for i, value in enumerate(rolled):
        if value and run_start is None:
            run_start = i
        elif not value and run_start is not None:
            if i - run_start > best_len:
                best_len, best_start = i - run_start, run_start
            run_start = None
    return (best_start + start) % n if best_len else 0, best_len


def _ray_profiles(mask: np.ndarray, centre_rc, directions_rc: np.ndarray, distances: np.ndarray):
    """A smoothed ``mask`` sampled along rays: ``(rays, samples)`` values in 0..1 (0.5 = the border)."""
    indicator = ndimage.gaussian_filter(mask.astype(np.float32), 0.5)
    rr = centre_rc[0] + directions_rc[:, 0:1] * distances[np.newaxis, :]
    cc = centre_rc[1] + directions_rc[:, 1:2] * distances[np.newaxis, :]
    return ndimage.map_coordinates(indicator, [rr, cc], order=1, mode="constant", cval=0.0)


def insertion_points_slice(
    labels: np.ndarray,
    spacing_rc_mm: tuple[float, float],
    contact_pixels: float = CONTACT_PIXELS,
    rv_mask: np.ndarray | None = None,
) -> dict | None:
    """The two ends of the LV epicardium the RV cavity touches on one ``(rows, cols)`` label slice.

    Rays leave the LV centroid (straight in millimetres); on each the epicardium is the 0.5 level of the
    lightly smoothed LV mask (cavity, papillary muscles and myocardium), and the ray counts as touching
    the RV when the RV mask rises above 0.5 within ``contact_pixels`` outside it. The longest circular run
    of touching rays is the septum; its two ends, on the epicardium, are the insertion points. ``rv_mask``
    replaces ``labels == RV`` as the RV (the network's RV with the pixels it thinks likely RV, see
    :func:`~CardiacMTLLib.segment.rv_contact_mask`).
    Returns ``{"points_rc": [(row, col), (row, col)], "angles": [a, b], "centre_rc": (row, col),
    "rv_angle": angle}`` (angles in radians of the ``(col, row)`` millimetre vector from the centroid,
    ``a`` then ``b`` counter-clockwise in that frame) or ``None`` when the slice lacks either ventricle
    or the RV touches no stretch of the epicardium.
    """
    labels = np.asarray(labels)
    lv = ndimage.binary_fill_holes((labels == LV_MYOCARDIUM) | (labels == LV_CAVITY))
    rv = labels == RV_CAVITY if rv_mask is None else np.asarray(rv_mask, dtype=bool) & ~lv
    if lv.sum() < MIN_STRUCTURE_PIXELS or rv.sum() < MIN_STRUCTURE_PIXELS:
        return None
    components, count = ndimage.label(lv)
    if count > 1:
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        lv = components == int(sizes.argmax())
    sr, sc = float(spacing_rc_mm[0]), float(spacing_rc_mm[1])
    # work in a box around the LV: the epicardium and the RV beside it are all that matter here
    margin = int(np.ceil(contact_pixels)) + 4
    rows, cols = np.nonzero(lv)
    r0, c0 = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
    box = (slice(r0, rows.max() + margin + 1), slice(c0, cols.max() + margin + 1))
    lv, rv = lv[box], rv[box]
    if not rv.any():
        return None
    centre = np.argwhere(lv).mean(axis=0)
    angles = np.linspace(-np.pi, np.pi, INSERTION_RAYS, endpoint=False)
    # unit steps in mm, expressed in pixels
    directions = np.stack([np.sin(angles) / sr, np.cos(angles) / sc], axis=1)
    step_mm = 0.25 * min(sr, sc)
    corners = np.array([[0, 0], [0, lv.shape[1]], [lv.shape[0], 0], [lv.shape[0], lv.shape[1]]], dtype=float)
    reach_mm = float(np.max(np.hypot((corners[:, 0] - centre[0]) * sr, (corners[:, 1] - centre[1]) * sc)))
    distances = np.arange(0.0, reach_mm, step_mm)
    lv_profile = _ray_profiles(lv, centre, directions, distances)
    outside = lv_profile < 0.5
    # first sample outside the LV on each ray (the LV is star-shaped from its centroid in practice),
    # then the sub-sample position of the 0.5 crossing
    first_out = np.where(outside.any(axis=1), np.argmax(outside, axis=1), distances.size - 1)
    prev = np.clip(first_out - 1, 0, None)
    v0 = lv_profile[np.arange(angles.size), prev]
    v1 = lv_profile[np.arange(angles.size), first_out]
    frac = np.where(v0 != v1, (v0 - 0.5) / np.where(v0 != v1, v0 - v1, 1.0), 0.0)
    epi_r = distances[prev] + np.clip(frac, 0, 1) * step_mm
    tolerance_mm = contact_pixels * max(sr, sc)
    rv_indicator = ndimage.gaussian_filter(rv.astype(np.float32), 0.5)
    offsets = np.arange(0.0, tolerance_mm + 1e-9, step_mm)
    radii = epi_r[:, np.newaxis] + offsets[np.newaxis, :]
    sample_r = centre[0] + directions[:, 0:1] * radii
    sample_c = centre[1] + directions[:, 1:2] * radii
    rv_near = ndimage.map_coordinates(rv_indicator, [sample_r, sample_c], order=1, mode="constant")
    touching = (rv_near >= 0.5).any(axis=1)
    if not touching.any() or touching.all():
        return None
    first, best_len = longest_circular_run(touching)
    if best_len * 360.0 / INSERTION_RAYS < MIN_CONTACT_DEG:
        return None
    last = (first + best_len - 1) % INSERTION_RAYS
    # the insertion lies half a ray beyond the last touching ray, between it and the first free one
    half = np.pi / INSERTION_RAYS
    points, ends = [], []
    for index, direction in ((first, -1), (last, 1)):
        angle = angles[index] + direction * half
        radius = 0.5 * (epi_r[index] + epi_r[(index + direction) % INSERTION_RAYS])
        points.append(
            (
                float(r0 + centre[0] + np.sin(angle) * radius / sr),
                float(c0 + centre[1] + np.cos(angle) * radius / sc),
            )
        )
        ends.append(float(np.angle(np.exp(1j * angle))))
    middle = angles[(first + best_len // 2) % INSERTION_RAYS]
    return {
        "points_rc": points,
        "angles": ends,
        "centre_rc": (float(r0 + centre[0]), float(c0 + centre[1])),
        "rv_angle": float(middle),
    }


def _has_patient_orientation(affine: np.ndarray) -> bool:
    """ACDC-style affines are diagonal: the image carries no patient orientation."""
    rotation = np.asarray(affine, dtype=float)[:3, :3]
    return bool(np.abs(rotation - np.diag(np.diag(rotation))).max() > 1e-6)


def _order_anterior_inferior(found: dict, k: int, affine: np.ndarray) -> list[tuple[float, float]]:
    """The two insertion points as ``[anterior, inferior]`` (each ``(row, col)``).

    With a patient orientation, the anterior insertion is the one further anterior and superior
    (RAS y + z): the inferior insertion lies on the diaphragmatic wall. Without one (ACDC, synthetic
    cines), the image is taken as displayed in the usual short-axis view, anterior up: going
    counter-clockwise in the ``(col, row)`` frame (rows down) from the RV centre, the septum ends at the
    anterior insertion.
    """
    first, second = found["points_rc"]  # first is clockwise of the RV centre, second counter-clockwise
    if _has_patient_orientation(affine):
        ras = [np.asarray(affine) @ np.array([p[1], p[0], k, 1.0]) for p in (first, second)]
        score = [r[1] + r[2] for r in ras]
        return [first, second] if score[0] >= score[1] else [second, first]
    return [second, first]


def rv_insertion_points(
    labels: np.ndarray,
    spacing_mm,
    affine: np.ndarray,
    frame: int = 0,
    source: str = "segmentation",
    rv_mask: np.ndarray | None = None,
    contact_pixels: float = CONTACT_PIXELS,
) -> list[dict]:
    """RV insertion points of a ``(slices, rows, cols)`` label map, on every slice that has both ventricles.

    ``spacing_mm`` is ``(col, row, slice)`` and ``affine`` the image's ``(i, j, k)`` to RAS affine (as in
    :class:`~CardiacMTLLib.cine.Cine`); ``frame`` is the frame number stored in the points. ``rv_mask``
    (same shape, optional) is the RV to use instead of ``labels == 1``: a network's
    :func:`~CardiacMTLLib.segment.rv_contact_mask`; ``contact_pixels`` as in :func:`insertion_points_slice`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise CardiacInputError(f"labels must be (slices, rows, cols), got shape {labels.shape}")
    spacing_rc = (float(spacing_mm[1]), float(spacing_mm[0]))
    points = []
    for k in range(labels.shape[0]):
        found = insertion_points_slice(
            labels[k], spacing_rc, contact_pixels, rv_mask=None if rv_mask is None else rv_mask[k]
        )
        if found is None:
            continue
        for name, (r, c) in zip(SAX_LABELS, _order_anterior_inferior(found, k, affine), strict=True):
            points.append(make_point(name, frame, k, (c, r, float(k)), affine, source=source))
    return points


def make_point(label: str, frame: int, slice_index: int | None, ijk, affine, source: str = "") -> dict:
    """A landmark dict with ``ras`` computed from ``ijk`` through ``affine``."""
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


# --------------------------------------------------------------------------------------------------
# the regression network's input (training and inference share it)


def network_input(
    image: np.ndarray, spacing_rc_mm: tuple[float, float], target_spacing_mm: float, size: int
) -> tuple[np.ndarray, dict]:
    """One 2D image as the landmark network sees it: whitened, resampled, zero-padded/cropped to ``size``.

    As in the MESA paper the image is whitened on its own (zero mean, unit standard deviation) and placed
    centrally into a ``size`` x ``size`` field padded with zeros; it is first resampled in plane to
    ``target_spacing_mm`` so that one network serves every pixel size. Returns the ``(size, size)``
    float32 input and the geometry that :func:`to_native_rc` needs to map predictions back.
    """
    from .preprocess import center_crop_or_pad, resample_inplane

    image = np.asarray(image, dtype=np.float32)
    std = float(image.std())
    whitened = (image - float(image.mean())) / (std if std > 0 else 1.0)
    resampled = resample_inplane(whitened[np.newaxis], spacing_rc_mm, target_spacing_mm)[0]
    cropped, offset = center_crop_or_pad(resampled[np.newaxis], size)
    geometry = {
        "scale_rc": (resampled.shape[0] / image.shape[0], resampled.shape[1] / image.shape[1]),
        "offset_rc": offset,
        "size": size,
    }
    return cropped[0].astype(np.float32), geometry


def to_network_units(points_rc, geometry: dict) -> np.ndarray:
    """Native ``(row, col)`` points to the network's normalised ``(x, y)`` = ((col + 0.5) / size, ...)."""
    out = []
    for r, c in points_rc:
        rr = (r + 0.5) * geometry["scale_rc"][0] - 0.5 - geometry["offset_rc"][0]
        cc = (c + 0.5) * geometry["scale_rc"][1] - 0.5 - geometry["offset_rc"][1]
        out += [(cc + 0.5) / geometry["size"], (rr + 0.5) / geometry["size"]]
    return np.array(out, dtype=np.float32)


def to_native_rc(values, geometry: dict) -> list[tuple[float, float]]:
    """Inverse of :func:`to_network_units`: network outputs to native ``(row, col)`` points."""
    values = np.asarray(values, dtype=float).reshape(-1, 2)
    points = []
    for x, y in values:
        rr = y * geometry["size"] - 0.5 + geometry["offset_rc"][0]
        cc = x * geometry["size"] - 0.5 + geometry["offset_rc"][1]
        points.append(
            ((rr + 0.5) / geometry["scale_rc"][0] - 0.5, (cc + 0.5) / geometry["scale_rc"][1] - 0.5)
        )
    return points


# --------------------------------------------------------------------------------------------------
# landmarks of an analysis, and what depends on them


def detect_sax_landmarks(
    labels: np.ndarray, cine, frame_indices, rv_likely: dict | None = None
) -> list[dict]:
    """RV insertion points of the frames at positions ``frame_indices`` of a ``(frames, slices, rows,
    cols)`` label series of ``cine`` (the segmentation-derived detector); ``frame`` is the frame number.
    ``rv_likely`` maps a frame position to the network's likely-RV pixels (``segment_cine(...,
    rv_likely=...)``); the RV is then read as :func:`~CardiacMTLLib.segment.connect_rv_contact` makes it."""
    from .segment import connect_rv_contact

    points = []
    for t in sorted(set(int(t) for t in frame_indices)):
        likely = (rv_likely or {}).get(t)
        points += rv_insertion_points(
            labels[t],
            cine.spacing_mm,
            cine.affine,
            frame=cine.frame_numbers[t],
            source="segmentation",
            rv_mask=None if likely is None else connect_rv_contact(labels[t], likely),
            contact_pixels=NETWORK_CONTACT_PIXELS,
        )
    return points


def insertions_of_frame(landmarks: list[dict], frame: int) -> dict[int, tuple]:
    """``{slice: ((row, col) anterior, (row, col) inferior)}`` of one frame, for the AHA segments."""
    by_slice: dict[int, dict] = {}
    for p in landmarks:
        if p["label"] in SAX_LABELS and p["frame"] == frame and p.get("slice") is not None:
            by_slice.setdefault(int(p["slice"]), {})[p["label"]] = (p["ijk"][1], p["ijk"][0])
    return {k: (v[RV_INSERT_ANTERIOR], v[RV_INSERT_INFERIOR]) for k, v in by_slice.items() if len(v) == 2}


def aha_indices(result) -> dict:
    """``WT_AHA_1 (mm)`` ... ``WT_AHA_16 (mm)`` of an analysis result from its ED labels and ED landmarks."""
    from .indices import aha_wall_thickness_mm

    ed_frame = result.cine.frame_numbers[result.ed_index]
    return aha_wall_thickness_mm(
        result.labels[result.ed_index],
        result.cine.spacing_mm,
        insertions_of_frame(result.landmarks, ed_frame),
    )


def _key(point: dict) -> tuple:
    return (point["label"], int(point["frame"]), None if point.get("slice") is None else int(point["slice"]))


def complete_point(point: dict, affine: np.ndarray, shape_kji: tuple[int, int, int], where: str = "") -> dict:
    """Check a landmark given by a user or a file and fill in ``ijk`` from ``ras`` or the other way round."""
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


def update_landmarks(result, landmarks: list[dict]):
    """An analysis result with ``landmarks`` put in and everything that depends on them recomputed.

    ``landmarks`` are dicts as in ``landmarks.json`` (``label``, ``frame``, ``slice``, and ``ijk`` or
    ``ras``); each replaces the result's point with the same label, frame and slice, or is added. A point
    that moved (by more than 0.01 voxel) or comes with ``"edited": true`` is marked edited by a person
    (``"edited": true``, ``"source": "user"``); points not given keep their place. The AHA segment wall
    thicknesses (``WT_AHA_* (mm)``) are recomputed from the ED insertion points, and the provenance
    counts the edited points. Returns a new result; the one passed in is not changed.
    """
    import dataclasses

    if not isinstance(landmarks, list | tuple):
        raise CardiacInputError(f"landmarks must be a list of points, got {type(landmarks).__name__}")
    shape = result.labels.shape[1:]
    current = {_key(p): dict(p) for p in result.landmarks}
    for given in landmarks:
        point = complete_point(given, result.cine.affine, shape, where="landmarks")
        key = _key(point)
        before = current.get(key)
        moved = before is None or np.max(np.abs(np.subtract(point["ijk"], before["ijk"]))) > 0.01
        if moved or point["edited"]:
            point["edited"] = True
            point["source"] = "user"
        else:
            point = before
        current[key] = point
    updated = dataclasses.replace(
        result,
        landmarks=sorted(
            current.values(),
            key=lambda p: (p["frame"], p["slice"] if p["slice"] is not None else -1, p["label"]),
        ),
        indices=dict(result.indices),
        provenance=dict(result.provenance),
    )
    updated.indices.update(aha_indices(updated))
    updated.provenance["landmarks edited by a person"] = sum(bool(p["edited"]) for p in updated.landmarks)
    return updated


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
