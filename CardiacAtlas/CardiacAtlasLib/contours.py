"""What the LV model is fitted to: contour points on image planes, with landmarks, from a label map.

:class:`ContourData` holds one frame's points labelled endocardium or epicardium, each on an
:class:`ImagePlane` (short-axis planes get the fit's breath-hold shifts), and the landmarks that place the
model (``MITRAL_VALVE``, ``APEX``, ``RV_INSERT``). :func:`contours_from_labels` makes it from a
``(slices, rows, cols)`` label map: the endocardium is the outline of the LV cavity, the epicardium that
of cavity and myocardium; the mitral valve hinges and RV insertion points come from the landmark dicts
of ``analyze`` when given, otherwise the septal direction is derived from the labels.
``CardiacAtlasLib.guidepoints`` makes it from CAP/biv-me guide points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.landmarks import LAX_LABELS, SAX_LABELS
from CardiacMTLLib.types import Label

ENDO, EPI = 0, 1
MIN_CONTOUR_PIXELS = 4


@dataclass
class ImagePlane:
    """One image plane of the data: ``origin_mm``, unit ``normal``, ``i_dir`` (the direction in which the
    column index grows) and ``j_dir`` (the row index grows); ``short_axis`` planes get breath-hold shifts."""

    name: str
    origin_mm: np.ndarray
    normal: np.ndarray
    i_dir: np.ndarray
    j_dir: np.ndarray
    short_axis: bool = True
    index: int | None = None


@dataclass
class ContourData:
    """Contour points of one frame: ``points_mm`` (n, 3), ``surface`` (n,) 0 endo / 1 epi, ``plane`` (n,)
    index into ``planes``, ``weight`` (n,). ``landmarks`` maps ``MITRAL_VALVE``, ``APEX``, ``RV_INSERT`` to
    (k, 3) points in the same coordinates; ``landmark_source`` says where each came from."""

    points_mm: np.ndarray
    surface: np.ndarray
    plane: np.ndarray
    planes: list[ImagePlane]
    weight: np.ndarray | None = None
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    landmark_source: dict[str, str] = field(default_factory=dict)
    coordinates: str = "RAS mm"
    source: str = ""

    def __post_init__(self) -> None:
        self.points_mm = np.asarray(self.points_mm, dtype=float).reshape(-1, 3)
        self.surface = np.asarray(self.surface, dtype=int).ravel()
        self.plane = np.asarray(self.plane, dtype=int).ravel()
        if self.weight is None:
            self.weight = np.ones(len(self.points_mm))
        self.weight = np.asarray(self.weight, dtype=float).ravel()
        if not (len(self.surface) == len(self.plane) == len(self.weight) == len(self.points_mm)):
            raise CardiacInputError(f"{self.source}: contour arrays of different lengths")
        if not np.all(np.isfinite(self.points_mm)):
            raise CardiacInputError(f"{self.source}: contour points contain NaN or infinity")
        for surface, name in ((ENDO, "endocardial"), (EPI, "epicardial")):
            if np.count_nonzero(self.surface == surface) < 10:
                raise CardiacInputError(
                    f"{self.source}: too few {name} contour points to fit an LV model "
                    f"({np.count_nonzero(self.surface == surface)}, need at least 10)"
                )


# ------------------------------------------------------------------------------------ image planes


def sax_planes(data: ContourData) -> list[int]:
    """Indices of the short-axis planes that carry points."""
    return [i for i, p in enumerate(data.planes) if p.short_axis and np.any(data.plane == i)]


def sax_planes_base_to_apex(data: ContourData) -> tuple[list[int], np.ndarray, float]:
    """SAX planes with LV data ordered base → apex, the unit normal pointing to the apex, the spacing (mm)."""
    sax = sax_planes(data)
    if len(sax) < 2:
        raise CardiacInputError(
            f"{data.source}: need contours on at least 2 short-axis slices to fit an LV model, found {len(sax)}"
        )
    normal = data.planes[sax[0]].normal
    position = np.array([data.planes[i].origin_mm @ normal for i in sax])
    order = np.argsort(position)
    sax = [sax[i] for i in order]
    position = position[order]
    spacing = float(np.median(np.diff(position))) if len(sax) > 1 else 8.0

    def radius(i: int) -> float:
        pts = data.points_mm[(data.plane == i) & (data.surface == EPI)]
        if len(pts) < 3:
            pts = data.points_mm[data.plane == i]
        return float(np.linalg.norm(pts - pts.mean(axis=0), axis=1).mean())

    # the base is the wide end of the stack, the apex narrows
    if "MITRAL_VALVE" in data.landmarks:
        mv = data.landmarks["MITRAL_VALVE"].mean(axis=0) @ normal
        base_first = abs(mv - position[0]) < abs(mv - position[-1])
    else:
        base_first = radius(sax[0]) >= radius(sax[-1])
    if not base_first:
        sax, normal = sax[::-1], -normal
    return sax, normal, abs(spacing)


def plane_centroid(data: ContourData, plane: int, surface: int) -> np.ndarray | None:
    """Centre (3,) mm of one surface's points on one plane, or ``None`` with fewer than 3 points."""
    pts = data.points_mm[(data.plane == plane) & (data.surface == surface)]
    return pts.mean(axis=0) if len(pts) >= 3 else None


# -------------------------------------------------------------------------------------- label maps


def _plane_of_slice(affine: np.ndarray, k: int) -> ImagePlane:
    affine = np.asarray(affine, dtype=float)
    i_dir = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    j_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    normal = np.cross(i_dir, j_dir)
    normal /= np.linalg.norm(normal)
    origin = affine @ np.array([0.0, 0.0, float(k), 1.0])
    return ImagePlane(f"slice {k}", origin[:3], normal, i_dir, j_dir, True, k)


def _longest_contour(mask: np.ndarray) -> np.ndarray | None:
    """(m, 2) (col, row) vertices of the longest 0.5-level contour of a binary mask (marching squares)."""
    import contourpy

    if np.count_nonzero(mask) < MIN_CONTOUR_PIXELS:
        return None
    padded = np.pad(mask.astype(np.float64), 1)
    lines = contourpy.contour_generator(z=padded).lines(0.5)
    if not lines:
        return None
    line = max(lines, key=len)
    return line[:-1] - 1.0 if np.allclose(line[0], line[-1]) else line - 1.0


def metric_affine(affine: np.ndarray, spacing_mm=None) -> np.ndarray:
    """The ``(i, j, k)`` → RAS affine with its columns scaled to ``spacing_mm`` (column, row, slice).

    ACDC's NIfTI affines carry no spacing (unit columns) while ``pixdim`` holds it; elsewhere the two
    agree and the affine comes back unchanged. Directions and the origin are kept.
    """
    affine = np.array(affine, dtype=float)
    if spacing_mm is None:
        return affine
    spacing = np.asarray(spacing_mm, dtype=float)[:3]
    norms = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(norms <= 0) or np.any(spacing <= 0):
        raise CardiacInputError(f"degenerate affine or spacing: {affine.tolist()}, {spacing.tolist()}")
    affine[:3, :3] = affine[:3, :3] / norms * spacing
    return affine


def contours_from_labels(
    labels: np.ndarray,
    affine: np.ndarray,
    landmarks: list[dict] | None = None,
    frame: int | None = None,
    source: str = "label map",
    spacing_mm=None,
) -> ContourData:
    """Endocardial (LV cavity) and epicardial (cavity + myocardium) contours of a ``(slices, rows, cols)``
    label map in RAS mm, with the landmarks of ``frame`` (dicts ``label`` and ``ijk`` or ``ras``) or, where
    missing, the RV insertion direction derived from the labels. ``spacing_mm`` (column, row, slice) scales
    an affine that lacks it (see :func:`metric_affine`)."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise CardiacInputError(f"{source}: expected (slices, rows, cols) labels, got shape {labels.shape}")
    affine = metric_affine(affine, spacing_mm)
    points, surface, plane, planes = [], [], [], []
    rv_points = []
    for k in range(labels.shape[0]):
        cavity = labels[k] == Label.LV_CAVITY
        lv = ndimage.binary_fill_holes(cavity | (labels[k] == Label.LV_MYOCARDIUM))
        found = False
        for s, mask in ((ENDO, cavity), (EPI, lv)):
            line = _longest_contour(mask)
            if line is None:
                continue
            ijk = np.column_stack([line[:, 0], line[:, 1], np.full(len(line), float(k)), np.ones(len(line))])
            points.append((ijk @ affine.T)[:, :3])
            surface.append(np.full(len(line), s))
            plane.append(np.full(len(line), len(planes)))
            found = True
        if found:
            planes.append(_plane_of_slice(affine, k))
        rv = labels[k] == Label.RV_CAVITY
        if found and np.count_nonzero(rv) >= 10 and np.count_nonzero(lv) >= 10:
            rv_points.append((k, np.argwhere(rv).mean(axis=0), np.argwhere(lv).mean(axis=0)))
    if not points:
        raise CardiacInputError(f"{source}: no LV cavity or myocardium (labels 3 and 2) in the label map")
    data = ContourData(
        np.vstack(points), np.concatenate(surface), np.concatenate(plane), planes, source=source
    )
    _add_label_landmarks(data, affine, landmarks, frame, rv_points)
    return data


def _landmark_mm(point: dict, affine: np.ndarray) -> np.ndarray:
    # the voxel index is mapped with the metric affine, so a file whose affine lacks the spacing (ACDC)
    # still gives millimetres; points without one (Slicer markups) are taken as RAS mm
    if point.get("ijk") is not None:
        return (affine @ np.r_[np.asarray(point["ijk"], dtype=float), 1.0])[:3]
    return np.asarray(point["ras"], dtype=float)


def _add_label_landmarks(data, affine, landmarks, frame, rv_points) -> None:
    chosen = {}
    for point in landmarks or []:
        chosen.setdefault(str(point.get("label", "")), []).append(point)

    def of_frame(names: tuple[str, ...]) -> tuple[np.ndarray | None, str]:
        found = [p for n in names for p in chosen.get(n, [])]
        same = [p for p in found if frame is None or p.get("frame") in (None, frame)]
        use = same or found
        if not use:
            return None, ""
        origins = sorted({str(p.get("source") or "given") for p in use})
        where = ("this frame" if same else "other frames") + f"; source: {', '.join(origins)}"
        return np.array([_landmark_mm(p, affine) for p in use], dtype=float), where

    mv, where = of_frame(LAX_LABELS)
    if mv is not None:
        data.landmarks["MITRAL_VALVE"] = mv
        data.landmark_source["base"] = f"mitral valve hinge landmarks ({len(mv)}, {where})"
    rv, where = of_frame(SAX_LABELS)
    if rv is not None:
        data.landmarks["RV_INSERT"] = rv
        data.landmark_source["septum"] = f"RV insertion landmarks ({len(rv)}, {where})"
        return
    # derived from the labels: the septum lies between the LV and RV cavity centres (cheaper and steadier
    # than tracing the insertion points on every slice, which only the direction is needed of here)
    if rv_points:
        centres = []
        for k, rv_rc, lv_rc in rv_points:
            for rc in (rv_rc, lv_rc):
                centres.append(affine @ np.array([rc[1], rc[0], float(k), 1.0]))
        centres = np.array(centres)[:, :3]
        rv_centre = centres[0::2].mean(axis=0)
        lv_centre = centres[1::2].mean(axis=0)
        data.landmarks["RV_INSERT"] = (rv_centre + 0.5 * (lv_centre - rv_centre))[None]
        data.landmark_source["septum"] = "segmentation: direction from the LV to the RV cavity centre"
