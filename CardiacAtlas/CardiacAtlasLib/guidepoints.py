"""The LV model fitted to CAP / biv-me guide points (``GPFile_NNN.txt`` per phase, ``SliceInfoFile.txt``).

The files are read by :mod:`CardiacMTLLib.io.guidepoints` (points in patient coordinates, DICOM LPS, mm).
For the LV model the endocardium is ``SAX_LV_ENDOCARDIAL`` + ``LAX_LV_ENDOCARDIAL``; the epicardium is
``SAX_LV_EPICARDIAL`` + ``LAX_LV_EPICARDIAL`` plus the septal contours (``SAX_RV_SEPTUM``,
``LAX_RV_SEPTUM``), because biv-me draws the LV epicardium only where it faces the lungs and the septum's
RV side is the LV epicardium there. ``MITRAL_VALVE`` points give the base, ``APEX_POINT`` the apex and
``RV_INSERT`` the septal direction. An image is short axis when it carries ``SAX_`` contours; only those
get breath-hold shifts. ED and ES are the phases with the largest and smallest sum of short-axis
endocardial contour areas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from CardiacAtlasLib.contours import ENDO, EPI, ContourData, ImagePlane
from CardiacAtlasLib.fit import FitOptions, FitResult, fit_contours, fit_frames
from CardiacMTLLib.io.guidepoints import (
    GuidePointImage,
    GuidePoints,
    check_frame_ids,
    read_guidepoint_file,
    read_guidepoint_folder,
)

ENDO_TYPES = ("SAX_LV_ENDOCARDIAL", "LAX_LV_ENDOCARDIAL")
EPI_TYPES = ("SAX_LV_EPICARDIAL", "LAX_LV_EPICARDIAL", "SAX_RV_SEPTUM", "LAX_RV_SEPTUM")
LANDMARK_TYPES = {"MITRAL_VALVE": "MITRAL_VALVE", "APEX_POINT": "APEX", "RV_INSERT": "RV_INSERT"}
LANDMARK_ROLES = {"MITRAL_VALVE": "base", "APEX": "apex", "RV_INSERT": "septum"}
COORDINATES = "patient mm (DICOM LPS, as in the guide-point files)"


def contours_from_guidepoints(
    points: GuidePoints | str | Path, images: dict[int, GuidePointImage]
) -> ContourData:
    """One phase's LV contours and landmarks (module doc) as :class:`ContourData`.

    ``points``: a phase's guide points, or the path of its ``GPFile_NNN.txt``; ``images``: the images of
    ``SliceInfoFile.txt`` (:func:`CardiacMTLLib.io.guidepoints.read_slice_info`).
    """
    if not isinstance(points, GuidePoints):
        points = read_guidepoint_file(points)
    check_frame_ids(points, images)
    types, frame_ids = points.contour_types, points.frame_ids
    sax_ids = {int(f) for f, t in zip(frame_ids, types, strict=True) if t.startswith("SAX_")}
    is_endo = points.of_type(*ENDO_TYPES)
    chosen = is_endo | points.of_type(*EPI_TYPES)
    used_ids = sorted(set(frame_ids[chosen].tolist()))
    planes = [
        ImagePlane(
            f"image {slice_id}",
            images[slice_id].position_mm,
            images[slice_id].normal,
            images[slice_id].i_dir,
            images[slice_id].j_dir,
            slice_id in sax_ids,
            slice_id,
        )
        for slice_id in used_ids
    ]
    index_of = {slice_id: n for n, slice_id in enumerate(used_ids)}
    data = ContourData(
        points.points_mm[chosen],
        np.where(is_endo[chosen], ENDO, EPI),
        np.array([index_of[f] for f in frame_ids[chosen]], dtype=int),
        planes,
        weight=points.weights[chosen],
        coordinates=COORDINATES,
        source=str(points.path),
    )
    for gp_type, key in LANDMARK_TYPES.items():
        found = points.points_mm[points.of_type(gp_type)]
        if len(found):
            data.landmarks[key] = found
            data.landmark_source[LANDMARK_ROLES[key]] = f"{gp_type} guide points ({len(found)})"
    return data


def sax_endocardial_area_sum_mm2(data: ContourData) -> float:
    """Sum over short-axis slices of the endocardial contour's area (points ordered by angle)."""
    total = 0.0
    for i, plane in enumerate(data.planes):
        pts = data.points_mm[(data.plane == i) & (data.surface == ENDO)]
        if not plane.short_axis or len(pts) < 3:
            continue
        u = (pts - pts.mean(axis=0)) @ plane.i_dir
        v = (pts - pts.mean(axis=0)) @ plane.j_dir
        order = np.argsort(np.arctan2(v, u))
        u, v = u[order], v[order]
        total += 0.5 * abs(float(np.dot(u, np.roll(v, -1)) - np.dot(v, np.roll(u, -1))))
    return total


def fit_guidepoint_folder(
    folder: str | Path,
    all_frames: bool = False,
    options: FitOptions | None = None,
    progress: bool = False,
) -> tuple[dict[str, FitResult], dict]:
    """Fit ED and ES (every phase too with ``all_frames``) of a guide-point folder.

    Returns the fits by ``ED``, ``ES`` and ``frameNNN`` (NNN the phase number), and the ``input`` entry
    of their ``fit.json``: the folder and how ED and ES were chosen (module doc).
    """
    folder = Path(folder)
    images, phase_points = read_guidepoint_folder(folder)
    phases = {number: contours_from_guidepoints(points, images) for number, points in phase_points.items()}
    areas = {number: sax_endocardial_area_sum_mm2(data) for number, data in phases.items()}
    ed = max(areas, key=areas.get)
    es = min(areas, key=areas.get)
    keys = [("ED", ed), ("ES", es)]
    if all_frames:
        keys += [(f"frame{number:03d}", number) for number in phases]

    def fit_phase(number: int) -> FitResult:
        result = fit_contours(phases[number], options)
        result.summary = {"frame": number, **result.summary}
        return result

    results = fit_frames(keys, fit_phase, str(folder), progress)
    input_info = {
        "path": str(folder.resolve()),
        "kind": "CAP/biv-me guide points",
        "ED/ES from": "largest / smallest sum of short-axis endocardial contour areas",
        "sax_endocardial_area_sum_mm2": {str(k): round(v, 1) for k, v in areas.items()},
    }
    return results, input_info
