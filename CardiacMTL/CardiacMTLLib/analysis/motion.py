"""In-plane myocardial motion between short-axis frames: a displacement field on the reference (usually
end-diastole) grid of each slice, restricted to a box around the LV.

Each slice is registered on its own in 2D, from the reference frame to every tracked frame, with
SimpleITK's fast symmetric-forces demons (a smooth dense field, Gaussian-regularised). Through-plane
motion (the base descending towards the apex, about 10-15 mm in systole) is ignored: a short-axis slice
sees other tissue as the heart moves through it, and only the in-plane component of the motion of what
lies in the slice is estimated. The field is Lagrangian: ``u(X)`` moves the point ``X`` of the reference
slice to ``X + u(X)`` in the tracked frame.

Three methods were compared on generated cines with exact strain (``bench/strain_accuracy.py --compare
2``: ED/ES pairs of 5 cines, 2 normal, 2 with an akinetic segment, 1 DCM, from the true labels; mean
absolute errors in percentage points of GCS / GRS / segmental CS / segmental RS, and seconds per pair):

- ``"contours"`` (the default): each ED point keeps its transmural fraction (0 on the endocardium, 1 on
  the epicardium) on the ray of the same angle from the cavity centre, the centre of the tracked frame
  being the one that best conserves each sector's wall area (so a rigid shift and a still wall are told
  apart). 0.11 / 1.15 / 0.57 / 1.62, akinetic segment found 2 of 2, 0.08 s.
- ``"labels"``: demons on a label-derived transmural coordinate image. 0.33 / 5.02 / 2.84 / 5.02,
  akinetic 0 of 2, 1.33 s.
- ``"images"``: demons on the image intensities of the box. 0.18 / 2.39 / 2.77 / 2.67, akinetic 0 of 2,
  1.04 s.

``"contours"`` is chosen: the most accurate, regionally above all, and over ten times faster (a 30-frame
16-slice cine in under 3 s on 2 cores, where the demons need about a minute). Demons regularise the
field with a Gaussian whose width spreads a still segment's boundary into its contracting neighbours,
and bright-blood SSFP myocardium has little texture for intensity registration to follow, so the images
add noise rather than information along the wall. On all 25 cines of the full benchmark (all frames):
GCS 0.29, GRS 0.95, segmental CS 0.69 and RS 1.47 points, the akinetic segment found in 10 of 10 and no
false one in 12 normal and 3 DCM cines. The label-based methods are as good as the segmentation they
follow, and motion along the wall (twist, rotation) is invisible to them; strain, being invariant to
rigid motion, is not affected by rotation, and circumferential strain of a closed ring is set by the
radial motion of its boundaries. The demons methods register all slice-frame pairs in one call, tiled
side by side in a mosaic with gaps between the tiles.

On real cines the methods disagree on radial strain. On the first 5 ACDC training patients of each
group (``bench/strain_acdc.py --per-group 5 --compare-methods``, the shipped model's ED/ES labels) the
NOR mean GCS / GRS is -20.2 / +67.3 % with ``"contours"``, -13.1 / +35.7 % with ``"images"`` and
-25.0 / +36.1 % with ``"labels"``. ``"contours"`` follows the segmented walls exactly, so its GRS is
the labels' own systolic thickening (+61 % from the expert labels of the 20 NOR patients); the demons'
Gaussian regularisation spreads the thickening of the wall into the cavity and the fat around it and
lowers it, as it does on the generated cines where the answer is known (GRS error 2.39 and 5.02
points). Published feature tracking (+20 to +45 % in healthy hearts) smooths its tracked contours in a
similar way. ``"contours"`` stays the default: it is the method that is right where the exact strain
is known, and the fast one.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import Cine, Label

METHODS = ("contours", "labels", "images")
# The box around the LV registered in each slice: the LV's bounding box over the frames plus this margin.
BOX_MARGIN_MM = 10.0
# Pixels of constant background between the tiles of the mosaic, so that one tile's field stays its own.
TILE_GAP_PX = 16
# Below this many pixels of cavity or myocardium a slice is not tracked (apex tip), as in indices.py.
MIN_SLICE_PIXELS = 5
# Scale (mm) of the signed distances beyond the endocardium and epicardium in the transmural coordinate.
DISTANCE_SCALE_MM = 8.0
DEFAULTS = {
    "contours": {"iterations": 0, "smoothing_px": 0.0},
    "labels": {"iterations": 200, "smoothing_px": 1.5},
    "images": {"iterations": 200, "smoothing_px": 1.5},
}
# Rays from the LV cavity centroid on which the "contours" method follows the endocardium and epicardium.
CONTOUR_RAYS = 360
# Circular Gaussian smoothing (degrees) of the boundary radii along the rays: pixel staircase, not anatomy.
CONTOUR_SMOOTHING_DEG = 4.0
# A ray whose wall is thinner than this (pixels) has no wall (the outflow tract of a basal slice): its
# radii are interpolated from the neighbouring rays.
MIN_WALL_PX = 0.5


def _farthest_half_mm(indicator: np.ndarray, centre, spacing_rc) -> float:
    """Distance (mm) from ``centre`` to the farthest pixel of ``indicator`` at or above 0.5 (0 if none)."""
    r, c = np.nonzero(indicator >= 0.5)
    if not r.size:
        return 0.0
    return float(np.hypot((r - centre[0]) * spacing_rc[0], (c - centre[1]) * spacing_rc[1]).max())


def _nearest_below_half_mm(indicator: np.ndarray, centre, spacing_rc) -> float:
    """Distance (mm) from ``centre`` to the nearest pixel of ``indicator`` below 0.5 (counting those within
    1e-3 of it, for rounding) or beyond the array's edge, where the interpolation reads zeros."""
    sr, sc = spacing_rc
    rows, cols = indicator.shape
    nearest = min(
        (centre[0] + 1) * sr, (rows - centre[0]) * sr, (centre[1] + 1) * sc, (cols - centre[1]) * sc
    )
    r, c = np.nonzero(indicator < 0.5 + 1e-3)
    if r.size:
        nearest = min(nearest, float(np.hypot((r - centre[0]) * sr, (c - centre[1]) * sc).min()))
    return float(nearest)


def _first_crossing(
    indicator: np.ndarray, centre, directions, spacing_rc, step_mm: float, reach_mm: float
) -> np.ndarray:
    """Distance (mm) along each ray to where the smoothed mask first falls below 0.5: found on samples one
    pixel apart, then placed within that pixel on eight finer samples (linear between them)."""
    coarse = np.arange(0.0, reach_mm + step_mm, step_mm)

    def sample(distances):  # distances: (rays, n)
        rr = centre[0] + directions[:, 0:1] * distances
        cc = centre[1] + directions[:, 1:2] * distances
        return ndimage.map_coordinates(indicator, [rr, cc], order=1, mode="constant", cval=0.0)

    # A sample farther than one pixel diagonal beyond every pixel at or above 0.5 interpolates values below
    # 0.5 only, so every ray is outside there: the coarse profile stops a little past that distance (most of
    # the reach is background), and the full reach is sampled only if some ray is still inside. Likewise a
    # sample nearer than one pixel diagonal short of every pixel below 0.5 is inside on every ray, so the
    # profile starts a step before that distance (the cavity, for the epicardium).
    first = None
    diagonal = float(np.hypot(*spacing_rc))
    bound = _farthest_half_mm(indicator, centre, spacing_rc) + diagonal + 2 * step_mm
    if bound < coarse[-1]:
        lower = _nearest_below_half_mm(indicator, centre, spacing_rc) - diagonal - step_mm
        start = int(np.searchsorted(coarse, lower)) if lower > 0 else 0
        near = coarse[start : int(np.searchsorted(coarse, bound)) + 1]
        outside = sample(np.broadcast_to(near, (directions.shape[0], near.size))) < 0.5
        if near.size and outside.any(axis=1).all():
            first = start + np.argmax(outside, axis=1)
    if first is None:
        profile = sample(np.broadcast_to(coarse, (directions.shape[0], coarse.size)))
        outside = profile < 0.5
        first = np.where(outside.any(axis=1), np.argmax(outside, axis=1), coarse.size - 1)
    fine = coarse[np.clip(first - 1, 0, None)][:, np.newaxis] + np.linspace(0.0, step_mm, 9)[np.newaxis, :]
    profile = sample(fine)
    outside = profile < 0.5
    index = np.where(outside.any(axis=1), np.argmax(outside, axis=1), 8)
    prev = np.clip(index - 1, 0, None)
    rays = np.arange(directions.shape[0])
    v0, v1 = profile[rays, prev], profile[rays, index]
    frac = np.where(v0 != v1, (v0 - 0.5) / np.where(v0 != v1, v0 - v1, 1.0), 0.0)
    return fine[rays, prev] + np.clip(frac, 0.0, 1.0) * (step_mm / 8.0)


def _smooth_circular(values: np.ndarray, sigma_rays: float) -> np.ndarray:
    """Fill NaN rays by circular linear interpolation, then smooth along the circle."""
    good = np.isfinite(values)
    if not good.any():
        return values
    if not good.all():
        index = np.arange(values.size)
        values = np.interp(index, index[good], values[good], period=values.size)
    return ndimage.gaussian_filter1d(values, sigma_rays, mode="wrap") if sigma_rays > 0 else values


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` of a 2D mask, computed on the mask's bounding box plus one pixel: the
    background outside the box is one region touching the border, so the holes are the same, at the cost
    of the box rather than the whole slice."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return np.zeros(mask.shape, dtype=bool)
    box = (
        slice(max(rows[0] - 1, 0), min(rows[-1] + 2, mask.shape[0])),
        slice(max(cols[0] - 1, 0), min(cols[-1] + 2, mask.shape[1])),
    )
    out = np.zeros(mask.shape, dtype=bool)
    out[box] = ndimage.binary_fill_holes(mask[box])
    return out


def _indicators(labels_slice: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Lightly smoothed cavity and LV (cavity + myocardium) masks, whose 0.5 levels are the endocardium and
    epicardium, and the cavity centroid (pixels); ``None`` for too little cavity or myocardium."""
    cavity = fill_holes(labels_slice == Label.LV_CAVITY)
    lv = fill_holes(cavity | (labels_slice == Label.LV_MYOCARDIUM))
    if cavity.sum() < MIN_SLICE_PIXELS or (lv & ~cavity).sum() < MIN_SLICE_PIXELS:
        return None
    smooth = [ndimage.gaussian_filter(m.astype(np.float32), 0.5) for m in (cavity, lv)]
    return smooth[0], smooth[1], np.argwhere(cavity).mean(axis=0)


_ANGLES = np.linspace(-np.pi, np.pi, CONTOUR_RAYS, endpoint=False)


def _radii(indicators, centre, spacing_rc, reach_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Endocardial and epicardial radii (mm) on the rays from ``centre`` (angle ``atan2(d_row, d_col)`` in
    mm from -180 degrees), gaps filled and smoothed, and which rays crossed a wall."""
    sr, sc = spacing_rc
    directions = np.stack([np.sin(_ANGLES) / sr, np.cos(_ANGLES) / sc], axis=1)
    step = min(sr, sc)
    endo = _first_crossing(indicators[0], centre, directions, spacing_rc, step, reach_mm)
    epi = _first_crossing(indicators[1], centre, directions, spacing_rc, step, reach_mm)
    valid = epi - endo >= MIN_WALL_PX * min(sr, sc)
    endo, epi = np.where(valid, endo, np.nan), np.where(valid, epi, np.nan)
    sigma = CONTOUR_SMOOTHING_DEG * CONTOUR_RAYS / 360.0
    return _smooth_circular(endo, sigma), _smooth_circular(epi, sigma), valid


def lv_contours(labels_slice: np.ndarray, spacing_rc, reach_mm: float = 80.0):
    """``(centre, endo_mm, epi_mm, valid)`` of one slice about its cavity centroid (see :func:`_radii`),
    or ``None`` when the slice has too little cavity or myocardium."""
    indicators = _indicators(labels_slice)
    if indicators is None:
        return None
    return _finite_or_none((indicators[2],) + _radii(indicators, indicators[2], spacing_rc, reach_mm))


def _finite_or_none(contours):
    """Contours whose centre and radii are all finite, else ``None`` (a slice whose wall no ray crosses)."""
    centre, endo, epi, _ = contours
    finite = np.isfinite(centre).all() and np.isfinite(endo).all() and np.isfinite(epi).all()
    return contours if finite else None


def _matched_contours(reference, labels_slice, spacing_rc, reach_mm: float, iterations: int = 4):
    """The contours of a tracked frame about the centre that best conserves the wall's area ray by ray.

    A rigid shift of the heart and a wall that stays still while the others contract both move the cavity
    centroid; the contours alone tell them apart by the wall: myocardium is nearly incompressible, so
    each sector's area ``epi^2 - endo^2`` keeps its share of the whole (a uniform change, from
    through-plane motion, is allowed), and only the true shift keeps it. Moving the centre by ``d`` (mm)
    changes a radius by about ``-d . e`` (``e`` the ray's direction), which makes the fit of ``d`` linear;
    a few Gauss-Newton steps from the reference centre converge.
    """
    indicators = _indicators(labels_slice)
    if indicators is None:
        return None
    centre_ref, endo_ref, epi_ref, valid_ref = reference
    area_ref = epi_ref**2 - endo_ref**2
    sr, sc = spacing_rc
    e = np.stack([np.sin(_ANGLES), np.cos(_ANGLES)], axis=1)
    centre = np.asarray(centre_ref, dtype=float).copy()
    for _ in range(iterations):
        endo, epi, valid = _radii(indicators, centre, spacing_rc, reach_mm)
        use = valid & valid_ref
        if use.sum() < CONTOUR_RAYS // 4 or not np.isfinite(area_ref).all():
            break
        width = epi - endo
        design = np.column_stack([-2 * width * e[:, 0], -2 * width * e[:, 1], -area_ref])[use]
        step, *_ = np.linalg.lstsq(design, -(epi**2 - endo**2)[use], rcond=None)
        centre += (step[0] / sr, step[1] / sc)
        if np.hypot(step[0], step[1]) < 0.05:
            break
    if not np.isfinite(centre).all():
        return None
    return _finite_or_none((centre,) + _radii(indicators, centre, spacing_rc, reach_mm))


def _contour_displacement(reference, target, box, shape_rc, spacing_rc) -> np.ndarray:
    """The ``(rows, cols, 2)`` displacement (mm) on ``box`` taking each point of the reference slice to the
    point of the target slice at the same transmural fraction on the ray of the same angle (about each
    slice's own cavity centroid): the boundaries move onto the boundaries, the wall in between linearly."""
    sr, sc = spacing_rc
    c_ref, endo_ref, epi_ref, _ = reference
    c_tgt, endo_tgt, epi_tgt, _ = target
    rows = np.arange(box[0].start, box[0].stop)[:, np.newaxis] * np.ones((1, shape_rc[1]))
    cols = np.arange(box[1].start, box[1].stop)[np.newaxis, :] * np.ones((shape_rc[0], 1))
    dy, dx = (rows - c_ref[0]) * sr, (cols - c_ref[1]) * sc
    radius = np.hypot(dy, dx)
    angle = np.arctan2(dy, dx)
    position = (angle + np.pi) / (2 * np.pi) * CONTOUR_RAYS
    ray_index = np.arange(CONTOUR_RAYS + 1)

    def at(values):
        return np.interp(position, ray_index, np.append(values, values[0]))

    e0, w0 = at(endo_ref), at(epi_ref) - at(endo_ref)
    e1, w1 = at(endo_tgt), at(epi_tgt) - at(endo_tgt)
    fraction = (radius - e0) / np.maximum(w0, 1e-3)
    moved = e1 + fraction * w1
    # inside the cavity the blood moves with the endocardium (scaled), so the field stays smooth there
    moved = np.where(radius < e0, radius * e1 / np.maximum(e0, 1e-3), moved)
    new_dy = (c_tgt[0] - c_ref[0]) * sr + moved * np.sin(angle)
    new_dx = (c_tgt[1] - c_ref[1]) * sc + moved * np.cos(angle)
    return np.stack([new_dy - dy, new_dx - dx], axis=-1)


@dataclass
class InPlaneMotion:
    """Displacements (mm) from the reference frame to each tracked frame, per slice, in a box around the LV.

    ``reference_index`` and ``frame_indices`` are positions on the cine's time axis. ``boxes[k]`` is the
    ``(row slice, col slice)`` of slice ``k``'s box in the image (``None`` where the slice has no
    measurable LV at the reference), and ``displacement_mm[k]`` the ``(frames, rows, cols, 2)`` field on
    that box: ``(d_row, d_col)`` in mm for each tracked frame, zero for the reference itself and NaN
    where the slice's wall could not be followed in that frame.
    ``spacing_rc_mm`` is the in-plane ``(row, col)`` spacing; ``method`` the input registered.
    """

    reference_index: int
    frame_indices: list[int]
    boxes: list[tuple[slice, slice] | None]
    displacement_mm: list[np.ndarray | None]
    spacing_rc_mm: tuple[float, float]
    method: str
    seconds: float = 0.0

    def position(self, frame_index: int) -> int:
        """Position in ``frame_indices`` of the cine frame at ``frame_index``."""
        try:
            return self.frame_indices.index(int(frame_index))
        except ValueError as e:
            raise CardiacInputError(
                f"frame {frame_index} was not tracked (tracked frames {self.frame_indices})"
            ) from e

    def warp_reference_mask(self, mask: np.ndarray, frame_index: int) -> np.ndarray:
        """A ``(slices, rows, cols)`` boolean mask of the reference frame carried by the motion into the frame
        at ``frame_index`` (outside the boxes it is carried unchanged)."""
        import SimpleITK as sitk

        mask = np.asarray(mask, dtype=bool)
        out = mask.copy()
        p = self.position(frame_index)
        sr, sc = self.spacing_rc_mm
        for k, box in enumerate(self.boxes):
            if box is None:
                continue
            u = self.displacement_mm[k][p]
            if not np.isfinite(u).all():
                continue  # not followed in that frame: carried unchanged
            field = sitk.GetImageFromArray(np.stack([u[..., 1], u[..., 0]], axis=-1).astype(np.float64), True)
            field.SetSpacing((sc, sr))
            inverse = sitk.InvertDisplacementField(field, maximumNumberOfIterations=30)
            # the inverse field maps a point of the tracked frame back to the reference
            back = sitk.GetArrayFromImage(inverse)
            rows, cols = np.mgrid[0 : u.shape[0], 0 : u.shape[1]].astype(float)
            source = [rows + back[..., 1] / sr, cols + back[..., 0] / sc]
            crop = mask[k][box].astype(np.float32)
            out[k][box] = ndimage.map_coordinates(crop, source, order=1, mode="nearest") >= 0.5
        return out


def _cores() -> int:
    """CPU cores this process may run on (the slices tracked at once)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _signed_distance_mm(mask: np.ndarray, spacing_rc) -> np.ndarray:
    """Distance (mm) to the mask's border, negative inside, through the pixel edges (+-half a pixel)."""
    if not mask.any():
        return np.full(mask.shape, 1e3)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing_rc)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing_rc)
    half = 0.5 * min(spacing_rc)
    return np.where(mask, -(inside - half), outside - half)


def transmural_coordinate(labels_slice: np.ndarray, spacing_rc) -> np.ndarray:
    """The label-derived image registered by the ``"labels"`` method for one ``(rows, cols)`` slice: 0 on
    the endocardium, 1 on the epicardium, the fraction of the wall's width in between, and the signed
    distance in units of :data:`DISTANCE_SCALE_MM` inside the cavity and beyond the epicardium."""
    cavity = ndimage.binary_fill_holes(labels_slice == Label.LV_CAVITY)
    lv = ndimage.binary_fill_holes(cavity | (labels_slice == Label.LV_MYOCARDIUM))
    to_endo = _signed_distance_mm(cavity, spacing_rc)
    to_epi = _signed_distance_mm(lv, spacing_rc)
    width = np.maximum(to_endo - to_epi, 1e-3)
    wall = np.clip(to_endo / width, 0.0, 1.0)
    value = np.where(
        to_endo < 0, to_endo / DISTANCE_SCALE_MM, np.where(to_epi > 0, 1 + to_epi / DISTANCE_SCALE_MM, wall)
    )
    return ndimage.gaussian_filter(np.clip(value, -1.5, 2.5), 0.7).astype(np.float32)


def _lv_mask(labels_slice: np.ndarray) -> np.ndarray:
    return (labels_slice == Label.LV_CAVITY) | (labels_slice == Label.LV_MYOCARDIUM)


def _boxes(labels: np.ndarray, frames: list[int], reference: int, spacing_rc) -> tuple[list, tuple[int, int]]:
    """Per slice the box (same size for all: the mosaic's tile) around the LV of the frames, or ``None``."""
    num_slices, rows, cols = labels.shape[1:]
    margin = (int(np.ceil(BOX_MARGIN_MM / spacing_rc[0])), int(np.ceil(BOX_MARGIN_MM / spacing_rc[1])))
    spans = []
    for k in range(num_slices):
        ref = labels[reference, k]
        if (ref == Label.LV_CAVITY).sum() < MIN_SLICE_PIXELS or (
            ref == Label.LV_MYOCARDIUM
        ).sum() < MIN_SLICE_PIXELS:
            spans.append(None)
            continue
        union = np.any([_lv_mask(labels[t, k]) for t in sorted(set(frames) | {reference})], axis=0)
        r, c = np.nonzero(union)
        spans.append(
            (r.min() - margin[0], r.max() + margin[0] + 1, c.min() - margin[1], c.max() + margin[1] + 1)
        )
    found = [s for s in spans if s is not None]
    if not found:
        return [None] * num_slices, (0, 0)
    height = min(max(s[1] - s[0] for s in found), rows)
    width = min(max(s[3] - s[2] for s in found), cols)
    boxes = []
    for s in spans:
        if s is None:
            boxes.append(None)
            continue
        r0 = int(np.clip((s[0] + s[1] - height) // 2, 0, rows - height))
        c0 = int(np.clip((s[2] + s[3] - width) // 2, 0, cols - width))
        boxes.append((slice(r0, r0 + height), slice(c0, c0 + width)))
    return boxes, (height, width)


def track_myocardium(
    cine: Cine,
    labels: np.ndarray,
    reference_index: int,
    frame_indices: list[int] | None = None,
    method: str = "contours",
    iterations: int | None = None,
    smoothing_px: float | None = None,
) -> InPlaneMotion:
    """Estimate the in-plane motion of the LV from the frame at ``reference_index`` (usually ED) to each
    frame at ``frame_indices`` (positions on the time axis; default every frame).

    ``labels`` is the ``(frames, slices, rows, cols)`` segmentation of ``cine`` (the ``"labels"`` method
    needs it for every tracked frame; ``"images"`` uses it for the boxes only). ``iterations`` and
    ``smoothing_px`` (the Gaussian regularisation of the field, in pixels) default to :data:`DEFAULTS`.
    """
    import time

    start = time.perf_counter()
    if method not in METHODS:
        raise CardiacInputError(f"method must be one of {METHODS}, got {method!r}")
    labels = np.asarray(labels)
    if labels.shape != cine.data.shape:
        raise CardiacInputError(f"labels must have the cine's shape {cine.data.shape}, got {labels.shape}")
    num_frames = cine.num_frames
    frames = list(range(num_frames)) if frame_indices is None else [int(t) for t in frame_indices]
    if not 0 <= reference_index < num_frames or any(not 0 <= t < num_frames for t in frames):
        raise CardiacInputError(
            f"frame positions must be in 0..{num_frames - 1}, got reference {reference_index} and {frames}"
        )
    settings = dict(DEFAULTS[method])
    settings.update(
        {k: v for k, v in (("iterations", iterations), ("smoothing_px", smoothing_px)) if v is not None}
    )
    spacing_rc = cine.inplane_spacing_rc_mm
    boxes, (height, width) = _boxes(labels, frames, reference_index, spacing_rc)
    tracked = [k for k, box in enumerate(boxes) if box is not None]
    moving_frames = [t for t in frames if t != reference_index]
    fields: list[np.ndarray | None] = [
        None if box is None else np.zeros((len(frames), height, width, 2)) for box in boxes
    ]
    if method == "contours" and tracked and moving_frames:
        reach = 0.5 * float(np.hypot(height * spacing_rc[0], width * spacing_rc[1]))

        def follow(k: int) -> None:
            box = boxes[k]
            offset = np.array([box[0].start, box[1].start], dtype=float)
            # contours are found in the box (cheap), then placed in the image
            reference = lv_contours(labels[reference_index, k][box], spacing_rc, reach)
            if reference is None:
                return
            for t in moving_frames:
                target = _matched_contours(reference, labels[t, k][box], spacing_rc, reach)
                if target is None:  # no wall to follow in this frame: unknown, not still
                    fields[k][frames.index(t)] = np.nan
                else:
                    fields[k][frames.index(t)] = _contour_displacement(
                        (reference[0] + offset,) + reference[1:],
                        (target[0] + offset,) + target[1:],
                        box,
                        (height, width),
                        spacing_rc,
                    )

        # slices are independent and scipy's interpolation releases the GIL: one thread per core
        with ThreadPoolExecutor(max_workers=min(len(tracked), _cores())) as pool:
            list(pool.map(follow, tracked))
    elif tracked and moving_frames:
        import SimpleITK as sitk  # the demons only: the contours need none of it (a fifth of a second)

        def feature(t: int, k: int, scale: float) -> np.ndarray:
            if method == "labels":
                return transmural_coordinate(labels[t, k][boxes[k]], spacing_rc)
            return np.clip(cine.data[t, k][boxes[k]].astype(np.float32) / scale, 0.0, 1.5)

        scales = {
            k: (float(np.percentile(cine.data[reference_index, k][boxes[k]], 99)) or 1.0) for k in tracked
        }
        pairs = [(t, k) for t in moving_frames for k in tracked]
        per_row = int(np.ceil(np.sqrt(len(pairs))))
        num_rows = int(np.ceil(len(pairs) / per_row))
        gap = TILE_GAP_PX
        shape = (num_rows * (height + gap) + gap, per_row * (width + gap) + gap)
        background = 2.5 if method == "labels" else 0.0
        fixed = np.full(shape, background, dtype=np.float32)
        moving = np.full(shape, background, dtype=np.float32)
        reference_features = {k: feature(reference_index, k, scales[k]) for k in tracked}
        origins = []
        for i, (t, k) in enumerate(pairs):
            r0 = gap + (i // per_row) * (height + gap)
            c0 = gap + (i % per_row) * (width + gap)
            origins.append((r0, c0))
            fixed[r0 : r0 + height, c0 : c0 + width] = reference_features[k]
            moving[r0 : r0 + height, c0 : c0 + width] = feature(t, k, scales[k])
        fixed_image = sitk.GetImageFromArray(fixed)
        moving_image = sitk.GetImageFromArray(moving)
        for image in (fixed_image, moving_image):
            image.SetSpacing((spacing_rc[1], spacing_rc[0]))
        demons = sitk.FastSymmetricForcesDemonsRegistrationFilter()
        demons.SetNumberOfIterations(int(settings["iterations"]))
        demons.SetSmoothDisplacementField(True)
        demons.SetStandardDeviations(float(settings["smoothing_px"]))
        field = sitk.GetArrayFromImage(demons.Execute(fixed_image, moving_image))  # (rows, cols, (x, y))
        for (t, k), (r0, c0) in zip(pairs, origins, strict=True):
            tile = field[r0 : r0 + height, c0 : c0 + width]
            fields[k][frames.index(t)] = np.stack([tile[..., 1], tile[..., 0]], axis=-1)
    return InPlaneMotion(
        reference_index=int(reference_index),
        frame_indices=frames,
        boxes=boxes,
        displacement_mm=fields,
        spacing_rc_mm=spacing_rc,
        method=method,
        seconds=time.perf_counter() - start,
    )
