"""The long-axis training data of a biv-me study: its 2- and 4-chamber series with the mitral valve guide points
projected into their pixels, and the LV label maps drawn from the long-axis contours."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.landmarks.mitral import order_hinges
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.lax import read_lax_cine
from CardiacMTLLib.types import Label

CONTOURS = ("LAX_LV_ENDOCARDIAL", "LAX_LV_EPICARDIAL")


@dataclass
class LaxSeries:
    """One long-axis cine with its mitral hinges: ``images`` ``(frames, rows, cols)``, ``points_rc``
    ``(frames, 2, 2)`` as ``[MV_HINGE_1, MV_HINGE_2]`` (row, col), ``labels`` ``(frames, rows, cols)``
    (2 LV myocardium, 3 LV cavity) or ``None`` when the series has no LV contours."""

    name: str
    view: str  # "2ch" or "4ch"
    images: np.ndarray
    spacing_rc: tuple[float, float]
    points_rc: np.ndarray
    labels: np.ndarray | None = None


def _open_curve(points_rc: np.ndarray) -> np.ndarray:
    """A contour's points in order from one end to the other, cut at the widest gap (the valve opening):
    guide-point contours may list a stray point of the start at their end."""
    gaps = np.linalg.norm(np.roll(points_rc, -1, axis=0) - points_rc, axis=1)
    return np.roll(points_rc, -(int(np.argmax(gaps)) + 1), axis=0)


def lax_contour_labels(endo_rc, epi_rc, shape: tuple[int, int]) -> np.ndarray:
    """A long-axis label map (3 LV cavity, 2 myocardium) from open endo- and epicardial contour points.

    The cavity is the endocardial curve closed by the straight valve line between its ends; the
    myocardium lies inside the epicardial curve (its points put in the order of the endocardium they face:
    guide-point lists come in pieces) and outside the cavity, but never beyond the valve line.
    """
    from matplotlib.path import Path as PolygonPath

    endo = _open_curve(np.asarray(endo_rc, dtype=float))
    epi = np.asarray(epi_rc, dtype=float)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(endo, axis=0), axis=1))]
    facing = np.argmin(np.linalg.norm(epi[:, None] - endo[None], axis=2), axis=1)
    epi = epi[np.argsort(arc[facing], kind="stable")]
    # only the box around the contours can be inside them
    low = np.clip(np.floor(np.vstack([endo, epi]).min(axis=0)).astype(int) - 2, 0, None)
    high = np.minimum(np.ceil(np.vstack([endo, epi]).max(axis=0)).astype(int) + 3, shape)
    rows, cols = np.maximum(high - low, 1)
    grid = np.stack(np.mgrid[low[0] : low[0] + rows, low[1] : low[1] + cols], axis=-1).reshape(-1, 2)
    grid = grid.astype(float)

    def inside(polygon):
        return PolygonPath(polygon).contains_points(grid).reshape(rows, cols)

    cavity = inside(endo)
    a, ab = endo[0], endo[-1] - endo[0]
    along = ((grid - a) @ ab) / max(float(ab @ ab), 1e-9)
    across = (ab[0] * (grid[:, 1] - a[1]) - ab[1] * (grid[:, 0] - a[0])) / max(float(np.hypot(*ab)), 1e-9)
    centre = endo.mean(axis=0) - a
    apex_side = np.sign(ab[0] * centre[1] - ab[1] * centre[0])
    beyond_valve = ((along > 0.03) & (along < 0.97) & (across * apex_side < 1.5)).reshape(rows, cols)
    box = np.zeros((rows, cols), dtype=np.uint8)
    box[inside(epi) & ~cavity & ~beyond_valve] = Label.LV_MYOCARDIUM
    box[cavity] = Label.LV_CAVITY
    labels = np.zeros(shape, dtype=np.uint8)
    labels[low[0] : low[0] + rows, low[1] : low[1] + cols] = box[: shape[0] - low[0], : shape[1] - low[1]]
    return labels


def _read_guide_points(gp_dir: Path) -> tuple[dict, dict, dict]:
    """``(file of frameID, mitral points {frameID: {phase: [LPS]}}, contours {(frameID, phase, name): [LPS]})``."""
    file_of = {}
    for line in (gp_dir / "SliceInfoFile.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2:
            file_of[int(parts[2])] = parts[0]
    points: dict[int, dict[int, list]] = {}
    contours: dict[tuple, list] = {}
    for path in sorted(gp_dir.glob("GPFile_*.txt")):
        t = int(path.stem.split("_")[1])
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) > 4 and parts[3] == "MITRAL_VALVE":
                points.setdefault(int(parts[4]), {}).setdefault(t, []).append([float(v) for v in parts[:3]])
            elif len(parts) > 4 and parts[3] in CONTOURS:
                contours.setdefault((int(parts[4]), t, parts[3]), []).append([float(v) for v in parts[:3]])
    return file_of, points, contours


def bivme_lax_series(bivme_dir: Path) -> list[LaxSeries]:
    """The long-axis series of a biv-me study that carry ``MITRAL_VALVE`` guide points.

    The guide points (LPS mm) are projected into the series' pixels; the phase of ``GPFile_NNN.txt`` is
    the series' frame NNN in trigger-time order. ``labels`` are the LV cavity and myocardium drawn from the
    ``LAX_LV_ENDOCARDIAL``/``LAX_LV_EPICARDIAL`` contours (:func:`lax_contour_labels`) when every phase
    has them.
    """
    gp_dir, dicom_dir = Path(bivme_dir) / "guidepoints", Path(bivme_dir) / "dicom"
    file_of, points, contours = _read_guide_points(gp_dir)
    series = []
    for frame_id, per_phase in sorted(points.items()):
        matches = list(dicom_dir.glob(f"*/{file_of[frame_id]}"))
        if not matches:
            continue
        folder = matches[0].parent
        cine = read_lax_cine(folder)
        description = " ".join(cine.extra.get("series_descriptions", [])).upper()
        view = "2ch" if "2CH" in description else "4ch"
        inverse = np.linalg.inv(cine.affine)

        def to_rc(lps, inverse=inverse) -> np.ndarray:
            lps = np.asarray(lps, dtype=float)
            ras = np.c_[-lps[:, 0], -lps[:, 1], lps[:, 2], np.ones(len(lps))]
            return (inverse @ ras.T).T[:, [1, 0]]

        labels = None
        if all((frame_id, t, n) in contours for t in range(cine.num_frames) for n in CONTOURS):
            labels = np.stack(
                [
                    lax_contour_labels(
                        to_rc(contours[(frame_id, t, CONTOURS[0])]),
                        to_rc(contours[(frame_id, t, CONTOURS[1])]),
                        cine.data.shape[2:],
                    )
                    for t in range(cine.num_frames)
                ]
            )
        targets = []
        for t in range(cine.num_frames):
            lps = per_phase.get(t, [])
            if len(lps) != 2:
                raise CardiacInputError(
                    f"{gp_dir}: phase {t} of frameID {frame_id} has {len(lps)} mitral points"
                )
            targets.append(order_hinges(to_rc(lps)))
        series.append(
            LaxSeries(
                name=folder.name,
                view=view,
                images=cine.data[:, 0],
                spacing_rc=(cine.spacing_mm[1], cine.spacing_mm[0]),
                points_rc=np.array(targets, dtype=np.float32),
                labels=labels,
            )
        )
    if not series:
        raise CardiacInputError(f"{bivme_dir}: no long-axis series with MITRAL_VALVE guide points found")
    return series
