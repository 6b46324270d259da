"""CAP / biv-me guide-point folders: ``GPFile_NNN.txt`` (one per phase) and ``SliceInfoFile.txt``, read once.

A guide-point file is tab-separated with a header, one point per line: ``x y z contour_type frameID
weight time_frame`` in patient coordinates (DICOM LPS, mm). ``frameID`` names an image in
``SliceInfoFile.txt``, whose lines give the image file, ``sliceID:``, ``ImagePositionPatient`` (3
numbers), ``ImageOrientationPatient`` (6) and ``PixelSpacing`` (2). The LV model fit
(``CardiacAtlasLib.guidepoints``) and the long-axis landmark training both read these files through
:func:`read_guidepoint_folder` (or its two parts, :func:`read_slice_info` and :func:`read_guidepoint_file`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError

GP_FILE_RE = re.compile(r"^GPFile_(\d+)\.txt$")
SLICE_INFO = "SliceInfoFile.txt"


@dataclass(frozen=True)
class GuidePointImage:
    """One image of ``SliceInfoFile.txt``: ``position_mm`` (3,) LPS of its first pixel, unit ``i_dir``
    (the column index grows; the first 3 numbers of ``ImageOrientationPatient``), unit ``j_dir`` (the row
    index grows) and the unit ``normal`` ``i_dir x j_dir``."""

    slice_id: int
    image_file: str
    position_mm: np.ndarray
    i_dir: np.ndarray
    j_dir: np.ndarray
    normal: np.ndarray


@dataclass(frozen=True)
class GuidePoints:
    """The points of one ``GPFile_NNN.txt``: ``points_mm`` (n, 3) LPS, ``contour_types`` (n,) str,
    ``frame_ids`` (n,) int (the ``sliceID`` of the image each point was drawn on), ``weights`` (n,)."""

    points_mm: np.ndarray
    contour_types: np.ndarray
    frame_ids: np.ndarray
    weights: np.ndarray
    path: Path

    def of_type(self, *contour_types: str) -> np.ndarray:
        """Whether each point is one of ``contour_types``: a boolean mask (n,)."""
        return np.isin(self.contour_types, contour_types)


def guidepoint_files(folder: str | Path) -> list[tuple[int, Path]]:
    """``(phase number, path)`` of the ``GPFile_NNN.txt`` files of ``folder``, by number."""
    found = []
    for path in Path(folder).iterdir():
        match = GP_FILE_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def is_guidepoint_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds ``GPFile_NNN.txt`` files and a ``SliceInfoFile.txt``."""
    folder = Path(folder)
    return folder.is_dir() and bool(guidepoint_files(folder)) and (folder / SLICE_INFO).is_file()


def read_slice_info(path: str | Path) -> dict[int, GuidePointImage]:
    """The images of ``SliceInfoFile.txt`` by slice id; ``CardiacInputError`` names the line at fault."""
    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: slice information file not found")
    images = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            at_id = tokens.index("sliceID:")
            slice_id = int(tokens[at_id + 1])
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
        images[slice_id] = GuidePointImage(
            slice_id,
            tokens[0] if at_id > 0 else "",
            position,
            i_dir / np.linalg.norm(i_dir),
            j_dir / np.linalg.norm(j_dir),
            normal / np.linalg.norm(normal),
        )
    if not images:
        raise CardiacInputError(f"{path}: no slices listed")
    return images


def read_guidepoint_file(path: str | Path) -> GuidePoints:
    """The points of one ``GPFile_NNN.txt``; ``CardiacInputError`` names the line at fault."""
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
    return GuidePoints(np.array(points), np.array(types), np.array(frame_ids), np.array(weights), path)


def read_guidepoint_folder(folder: str | Path) -> tuple[dict[int, GuidePointImage], dict[int, GuidePoints]]:
    """``(images by slice id, guide points by phase number)`` of a guide-point folder.

    Every point's ``frameID`` must name an image of ``SliceInfoFile.txt``; otherwise ``CardiacInputError``
    names the file and the missing ids.
    """
    folder = Path(folder)
    if not is_guidepoint_folder(folder):
        raise CardiacInputError(f"{folder}: expected GPFile_NNN.txt files and {SLICE_INFO}")
    images = read_slice_info(folder / SLICE_INFO)
    phases = {}
    for number, path in guidepoint_files(folder):
        points = read_guidepoint_file(path)
        check_frame_ids(points, images)
        phases[number] = points
    return images, phases


def check_frame_ids(points: GuidePoints, images: dict[int, GuidePointImage]) -> None:
    """``CardiacInputError`` naming the file when a point's ``frameID`` is not an image of ``images``."""
    missing = sorted(set(points.frame_ids.tolist()) - set(images))
    if missing:
        raise CardiacInputError(f"{points.path}: frame ids {missing} are not in {SLICE_INFO}")
