"""CAP / biv-me guide-point folders: ``GPFile_NNN.txt`` (one per phase) and ``SliceInfoFile.txt``.

A guide-point file is tab-separated with a header, one point per line: ``x y z contour_type frameID
weight time_frame`` in patient coordinates (DICOM LPS, mm). ``frameID`` names an image in
``SliceInfoFile.txt``, whose lines give ``sliceID:``, ``ImagePositionPatient`` (3 numbers),
``ImageOrientationPatient`` (6) and ``PixelSpacing`` (2). For the LV model the endocardium is
``SAX_LV_ENDOCARDIAL`` + ``LAX_LV_ENDOCARDIAL``; the epicardium is ``SAX_LV_EPICARDIAL`` +
``LAX_LV_EPICARDIAL`` plus the septal contours (``SAX_RV_SEPTUM``, ``LAX_RV_SEPTUM``), because biv-me draws
the LV epicardium only where it faces the lungs and the septum's RV side is the LV epicardium there.
``MITRAL_VALVE`` points give the base, ``APEX_POINT`` the apex and ``RV_INSERT`` the septal direction.
An image is short axis when it carries ``SAX_`` contours; only those get breath-hold shifts.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from CardiacAtlasLib.fit import (
    ENDO,
    EPI,
    ContourData,
    FitOptions,
    FitResult,
    ImagePlane,
    fit_contours,
    write_fit_folder,
)
from CardiacMTLLib.errors import CardiacInputError

GP_FILE_RE = re.compile(r"^GPFile_(\d+)\.txt$")
SLICE_INFO = "SliceInfoFile.txt"
ENDO_TYPES = ("SAX_LV_ENDOCARDIAL", "LAX_LV_ENDOCARDIAL")
EPI_TYPES = ("SAX_LV_EPICARDIAL", "LAX_LV_EPICARDIAL", "SAX_RV_SEPTUM", "LAX_RV_SEPTUM")
LANDMARK_TYPES = {"MITRAL_VALVE": "MITRAL_VALVE", "APEX_POINT": "APEX", "RV_INSERT": "RV_INSERT"}
COORDINATES = "patient mm (DICOM LPS, as in the guide-point files)"


def guidepoint_files(folder: str | Path) -> list[tuple[int, Path]]:
    """``(phase number, path)`` of the ``GPFile_NNN.txt`` files of ``folder``, by number."""
    found = []
    for path in Path(folder).iterdir():
        match = GP_FILE_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def is_guidepoint_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and bool(guidepoint_files(folder)) and (folder / SLICE_INFO).is_file()


def read_slice_info(path: str | Path) -> dict[int, ImagePlane]:
    """Image planes by slice id from ``SliceInfoFile.txt``."""
    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: slice information file not found")
    planes = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            slice_id = int(tokens[tokens.index("sliceID:") + 1])
            at = tokens.index("ImagePositionPatient")
            position = np.array(tokens[at + 1 : at + 4], dtype=float)
            at = tokens.index("ImageOrientationPatient")
            orientation = np.array(tokens[at + 1 : at + 7], dtype=float)
        except (ValueError, IndexError) as e:
            raise CardiacInputError(
                f"{path}, line {number}: expected 'sliceID: N', 'ImagePositionPatient' x y z and "
                f"'ImageOrientationPatient' with 6 numbers ({e})"
            ) from e
        if len(position) != 3 or len(orientation) != 6:
            raise CardiacInputError(f"{path}, line {number}: incomplete position or orientation")
        i_dir, j_dir = orientation[:3], orientation[3:]
        normal = np.cross(i_dir, j_dir)
        if np.linalg.norm(normal) < 0.5:
            raise CardiacInputError(
                f"{path}, line {number}: degenerate ImageOrientationPatient {orientation}"
            )
        planes[slice_id] = ImagePlane(
            f"image {slice_id}",
            position,
            normal / np.linalg.norm(normal),
            i_dir / np.linalg.norm(i_dir),
            j_dir / np.linalg.norm(j_dir),
            True,
            slice_id,
        )
    if not planes:
        raise CardiacInputError(f"{path}: no slices listed")
    return planes


def read_guidepoint_file(path: str | Path) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """``(points (n, 3) mm, contour types, frame ids (n,), weights (n,))`` of one ``GPFile_NNN.txt``."""
    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: guide-point file not found")
    points, types, frame_ids, weights = [], [], [], []
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if not row or (number == 1 and row[0].strip().lower() == "x"):
                continue
            try:
                points.append([float(v) for v in row[:3]])
                types.append(row[3].strip())
                frame_ids.append(int(float(row[4])))
                weights.append(float(row[5]) if len(row) > 5 and row[5].strip() else 1.0)
            except (ValueError, IndexError) as e:
                raise CardiacInputError(
                    f"{path}, line {number}: expected tab-separated 'x y z contour_type frameID weight "
                    f"time_frame', found {row!r}"
                ) from e
    if not points:
        raise CardiacInputError(f"{path}: no guide points")
    return np.array(points), types, np.array(frame_ids), np.array(weights)


def contours_from_guidepoints(path: str | Path, planes: dict[int, ImagePlane]) -> ContourData:
    """One phase's LV contours and landmarks (module doc) as :class:`ContourData`."""
    path = Path(path)
    points, types, frame_ids, weights = read_guidepoint_file(path)
    types = np.array(types)
    missing = sorted(set(frame_ids.tolist()) - set(planes))
    if missing:
        raise CardiacInputError(f"{path}: frame ids {missing} are not in {SLICE_INFO}")
    sax_ids = {int(f) for f, t in zip(frame_ids, types, strict=True) if t.startswith("SAX_")}
    is_endo = np.isin(types, ENDO_TYPES)
    is_epi = np.isin(types, EPI_TYPES)
    chosen = is_endo | is_epi
    used_ids = sorted(set(frame_ids[chosen].tolist()))
    plane_list = []
    for slice_id in used_ids:
        plane = planes[slice_id]
        plane_list.append(
            ImagePlane(
                plane.name,
                plane.origin_mm,
                plane.normal,
                plane.i_dir,
                plane.j_dir,
                slice_id in sax_ids,
                slice_id,
            )
        )
    index_of = {slice_id: n for n, slice_id in enumerate(used_ids)}
    data = ContourData(
        points[chosen],
        np.where(is_endo[chosen], ENDO, EPI),
        np.array([index_of[f] for f in frame_ids[chosen]], dtype=int),
        plane_list,
        weight=weights[chosen],
        coordinates=COORDINATES,
        source=str(path),
    )
    for gp_type, key in LANDMARK_TYPES.items():
        found = points[types == gp_type]
        if len(found):
            data.landmarks[key] = found
            what = {"MITRAL_VALVE": "base", "APEX": "apex", "RV_INSERT": "septum"}[key]
            data.landmark_source[what] = f"{gp_type} guide points ({len(found)})"
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
    out_dir: str | Path | None = None,
    all_frames: bool = False,
    options: FitOptions | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, FitResult]:
    """Fit ED and ES (largest and smallest sum of short-axis endocardial areas; every phase with
    ``all_frames``) of a guide-point folder; writes ``out_dir`` when given."""
    folder = Path(folder)
    if not is_guidepoint_folder(folder):
        raise CardiacInputError(f"{folder}: expected GPFile_NNN.txt files and {SLICE_INFO}")
    planes = read_slice_info(folder / SLICE_INFO)
    files = guidepoint_files(folder)
    phases = {number: contours_from_guidepoints(path, planes) for number, path in files}
    areas = {number: sax_endocardial_area_sum_mm2(data) for number, data in phases.items()}
    ed = max(areas, key=areas.get)
    es = min(areas, key=areas.get)
    keys = [("ED", ed), ("ES", es)]
    if all_frames:
        keys += [(f"frame{number:03d}", number) for number in phases]
    iterator = keys
    if progress:
        from tqdm import tqdm

        iterator = tqdm(keys, desc="fitting LV model", unit="frame")
    done: dict[int, FitResult] = {}
    results = {}
    for key, number in iterator:
        if number not in done:
            done[number] = fit_contours(phases[number], options)
            done[number].summary = {"frame": number, **done[number].summary}
        results[key] = done[number]
    if out_dir is not None:
        write_fit_folder(
            results,
            out_dir,
            {
                "path": str(folder.resolve()),
                "kind": "CAP/biv-me guide points",
                "ED/ES from": "largest / smallest sum of short-axis endocardial contour areas",
                "sax_endocardial_area_sum_mm2": {str(k): round(v, 1) for k, v in areas.items()},
            },
            options,
            overwrite=overwrite,
        )
    return results
