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

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.landmarks.common import longest_circular_run
from CardiacMTLLib.analysis.masks import fill_holes
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.landmarks import SAX_LABELS, make_point
from CardiacMTLLib.types import Label, metric_affine

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
    lv = fill_holes((labels == Label.LV_MYOCARDIUM) | (labels == Label.LV_CAVITY))
    rv = labels == Label.RV_CAVITY if rv_mask is None else np.asarray(rv_mask, dtype=bool) & ~lv
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
    ras_affine = metric_affine(
        affine, spacing_mm
    )  # the points' ras in millimetres, whatever the file's affine
    points = []
    for k in range(labels.shape[0]):
        found = insertion_points_slice(
            labels[k], spacing_rc, contact_pixels, rv_mask=None if rv_mask is None else rv_mask[k]
        )
        if found is None:
            continue
        for name, (r, c) in zip(SAX_LABELS, _order_anterior_inferior(found, k, affine), strict=True):
            points.append(make_point(name, frame, k, (c, r, float(k)), ras_affine, source=source))
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
    from CardiacMTLLib.analysis.segment import connect_rv_contact

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
