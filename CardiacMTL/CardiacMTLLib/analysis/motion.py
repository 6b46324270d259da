"""In-plane myocardial motion between short-axis frames: a displacement field on the reference (usually
end-diastole) grid of each slice, restricted to a box around the LV.

Each slice is tracked on its own in 2D, from the reference frame to every tracked frame: by default
along its contours, or registered with SimpleITK's fast symmetric-forces demons (a smooth dense field,
Gaussian-regularised). Through-plane motion (the base descending towards the apex, about 10-15 mm in
systole) is ignored: a short-axis slice sees other tissue as the heart moves through it, and only the
in-plane component of the motion of what lies in the slice is estimated. A basal slice the base
descends through shows the atrium or the outflow tract at systole: the contour methods follow a slice
only in the frames where myocardium surrounds at least half of its cavity (``masks.has_wall``), so such a
frame has no field rather than one made up from the atrial wall. The field is Lagrangian: ``u(X)``
moves the point ``X`` of the reference slice to ``X + u(X)`` in the tracked frame.

Four methods were compared on generated cines with exact strain (``bench/strain_accuracy.py --compare
2``: the ED/ES pairs of 6 cines, 2 normal, 2 with an akinetic segment, 2 DCM, from the true labels;
mean absolute errors in percentage points of GCS / GRS / segmental CS / segmental RS, and seconds per
pair):

- ``"contours"`` (the default) follows the endocardium and epicardium along rays from the cavity centre,
  the centre of the tracked frame being the one that best conserves each sector's wall area (so a rigid
  shift and a still wall are told apart). Between and beyond them the field keeps each ring's in-plane
  area: a point at ED radius ``R`` on a ray moves to ``sqrt(R^2 - d)``, with ``d`` the least-squares fit
  of both tracked borders (:func:`area_conserving_shrink`); the blood inside follows the endocardium.
  0.33 / 0.21 / 0.65 / 0.74, akinetic segment found 2 of 2, 0.07 s.
- ``"walls"``: the same contours, the field carrying each border onto its tracked border and the wall
  in between linearly (each ED point keeps its transmural fraction), so its radial strain is the
  segmented wall's own thickening. 0.13 / 1.05 / 0.58 / 1.54, akinetic 2 of 2, 0.07 s.
- ``"labels"``: demons on a label-derived transmural coordinate image. 0.30 / 4.66 / 2.48 / 4.66,
  akinetic 0 of 2, 0.83 s.
- ``"images"``: demons on the image intensities of the box. 0.19 / 2.11 / 2.52 / 2.41, akinetic 0 of 2,
  0.73 s.

On all 25 cines of the full benchmark (all frames) ``"contours"`` gives GCS 0.29, GRS 0.14, segmental CS
0.66 and RS 0.86 points (``"walls"``: 0.29 / 0.95 / 0.69 / 1.47), the akinetic segment found in 10 of
10 and no false one in 12 normal and 3 DCM cines. The demons regularise the field with a Gaussian whose
width spreads a still segment's boundary into its contracting neighbours, and bright-blood SSFP
myocardium has little texture for intensity registration to follow; they are also over ten times
slower. The label-based methods are as good as the segmentation they follow, and motion along the wall
(twist, rotation) is invisible to them; strain, being invariant to rigid motion, is not affected by
rotation. The demons methods register all slice-frame pairs in one call, tiled side by side in a mosaic
with gaps between the tiles.

Why the default keeps the wall's area. Myocardium is nearly incompressible, and with the through-plane
motion ignored a wall moving in its plane keeps its area, as the generated cines' walls do. The
segmented wall of a fixed short-axis slice does not: at end-systole it holds the tissue that
longitudinal shortening has brought into the slice, and trabeculae pressed into the wall, and its
in-plane area grows. On the 100 ACDC training patients (``bench/strain_acdc.py``, the shipped model's
ED/ES labels) the myocardium's area at ES is 1.23 times its ED area in NOR hearts (DCM 1.06). A field
that carries both borders exactly (``"walls"``) reads that growth as radial strain: NOR GRS +67.0 %,
the segmented walls' thickening, far above published feature tracking in healthy hearts (+29.1 +- 4.8 %
with full coverage in 67 healthy volunteers, cvi42 and TomTec; PMC8128822). Keeping the area and fitting
both borders gives NOR GCS / GRS -21.4 / +34.8 %, DCM -5.9 / +9.3 %, MINF -9.8 / +18.4 % (see the
bench for the table). On the generated cines, where the answer is known, it is also the more accurate in
radial strain (GRS 0.14 against 0.95 points, segmental 0.86 against 1.47) and as accurate in
circumferential strain (GCS 0.29 both; on the ED/ES pairs 0.33 against 0.13).
The wall's thickening is still reported per segment, from the labels (:mod:`.strain`). The price is
that the warped ED myocardium keeps its area where the segmented ES wall grows: tracking Dice against
the expert ES myocardium 0.804 for ``"contours"``, 0.834 for ``"walls"`` (the same bench).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.masks import fill_holes, has_wall
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import Cine, Label

# The methods that follow the tracked contours, and whether their field inside the wall conserves its area.
CONTOUR_METHODS = {"contours": True, "walls": False}
METHODS = (*CONTOUR_METHODS, "labels", "images")
# The box around the LV registered in each slice: the LV's bounding box over the frames plus this margin.
BOX_MARGIN_MM = 10.0
# Pixels of constant background between the tiles of the mosaic, so that one tile's field stays its own.
TILE_GAP_PX = 16
# Below this many pixels of cavity or myocardium a slice is not tracked (apex tip), as in indices.py.
MIN_SLICE_PIXELS = 5
# Scale (mm) of the signed distances beyond the endocardium and epicardium in the transmural coordinate.
DISTANCE_SCALE_MM = 8.0
# The demons methods' iterations and Gaussian regularisation (pixels); the contour methods have neither.
DEMONS_DEFAULTS = {
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


def _edge_pixels(mask: np.ndarray, of: np.ndarray, beyond: bool) -> tuple[np.ndarray, ...]:
    """``(plane, row, col)`` of the pixels of each plane of ``mask`` with a 4-neighbour in ``of`` (or
    beyond the plane's edge, when ``beyond``), in C order."""
    padded = np.pad(of, [(0, 0), (1, 1), (1, 1)], constant_values=beyond)
    beside = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
    return np.nonzero(mask & beside)


class _SliceWalls:
    """One slice's lightly smoothed cavity and LV (cavity + myocardium) masks in every frame, whose 0.5
    levels are the endocardium and epicardium, and what the ray search needs of each: the pixels that can
    be the farthest at or above 0.5 and the nearest below it from a centre.

    A pixel at or above 0.5 whose four neighbours all are too is never the farthest from any point (a
    step away from the point is farther), and a pixel below 0.5 whose four neighbours all are too is never
    the nearest to a point more than half a pixel away on an axis (a step towards it is nearer), so the
    search reads only the pixels at the edges of the masks, found once per frame for every centre tried.
    """

    def __init__(self, labels_frames: np.ndarray):
        cavity = fill_holes(labels_frames == Label.LV_CAVITY)
        lv = fill_holes(cavity | (labels_frames == Label.LV_MYOCARDIUM))
        # too little cavity or myocardium in a frame, or a cavity mostly without wall: nothing to follow
        self.measurable = (
            (cavity.sum(axis=(1, 2)) >= MIN_SLICE_PIXELS)
            & ((lv & ~cavity).sum(axis=(1, 2)) >= MIN_SLICE_PIXELS)
            & has_wall(cavity, labels_frames == Label.LV_MYOCARDIUM)
        )
        self.cavity = cavity
        self.shape = labels_frames.shape[1:]
        self.smooth = [ndimage.gaussian_filter(m.astype(np.float32), (0, 0.5, 0.5)) for m in (cavity, lv)]
        self.flat = [s.ravel() for s in self.smooth]
        self.farthest_candidates, self.nearest_candidates = [], []
        for s in self.smooth:
            half, below = s >= 0.5, s < 0.5 + 1e-3
            self.farthest_candidates.append(_edge_pixels(half, ~half, beyond=True))
            self.nearest_candidates.append(_edge_pixels(below, ~below, beyond=False))

    def sample(self, which: int, frames: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Bilinear values (float32) of mask ``which`` of each of ``frames`` at ``(rows, cols)`` pixel
        positions of shape ``(frames, ...)``, zero outside the plane: the values of
        ``ndimage.map_coordinates(order=1, mode="constant")`` on each plane, for all frames in one pass
        (one plane alone, as for an ED/ES pair, is cheapest read by that call itself)."""
        planes = np.asarray(frames)
        if planes.size and (planes == planes.flat[0]).all():
            plane = self.smooth[which][planes.flat[0]]
            return ndimage.map_coordinates(plane, [rows, cols], order=1, mode="constant", cval=0.0)
        height, width = self.shape
        inside = (rows >= 0) & (rows <= height - 1) & (cols >= 0) & (cols <= width - 1)
        rows, cols = np.where(inside, rows, 0.0), np.where(inside, cols, 0.0)
        r0 = np.minimum(np.floor(rows), height - 2)
        c0 = np.minimum(np.floor(cols), width - 2)
        fr, fc = rows - r0, cols - c0
        plane = np.asarray(frames).reshape((-1,) + (1,) * (rows.ndim - 1))
        index = (plane * height + r0.astype(np.intp)) * width + c0.astype(np.intp)
        values = self.flat[which]
        top = (1 - fc) * values[index] + fc * values[index + 1]
        bottom = (1 - fc) * values[index + width] + fc * values[index + width + 1]
        return np.where(inside, (1 - fr) * top + fr * bottom, 0.0).astype(np.float32)

    def farthest_half_mm(self, which: int, frames: np.ndarray, centres: np.ndarray, spacing_rc) -> np.ndarray:
        """Per frame the distance (mm) from its centre to the farthest pixel at or above 0.5 (0 if none)."""
        return self._extreme(self.farthest_candidates[which], frames, centres, spacing_rc, np.maximum, 0.0)

    def nearest_below_half_mm(
        self, which: int, frames: np.ndarray, centres: np.ndarray, spacing_rc
    ) -> np.ndarray:
        """Per frame the distance (mm) from its centre to the nearest pixel below 0.5 (counting those within
        1e-3 of it, for rounding) or beyond the plane's edge, where the interpolation reads zeros."""
        sr, sc = spacing_rc
        rows, cols = self.shape
        r, c = centres[:, 0], centres[:, 1]
        nearest = np.minimum.reduce([(r + 1) * sr, (rows - r) * sr, (c + 1) * sc, (cols - c) * sc])
        found = self._extreme(self.nearest_candidates[which], frames, centres, spacing_rc, np.minimum, np.inf)
        # the four pixels around the centre, the only others that can be the nearest
        pr = np.floor(r).astype(np.intp)[:, np.newaxis] + np.array([0, 0, 1, 1])
        pc = np.floor(c).astype(np.intp)[:, np.newaxis] + np.array([0, 1, 0, 1])
        within = (pr >= 0) & (pr < rows) & (pc >= 0) & (pc < cols)
        plane = np.broadcast_to(frames[:, np.newaxis], pr.shape)
        below = np.zeros(pr.shape, dtype=bool)
        below[within] = self.smooth[which][plane[within], pr[within], pc[within]] < 0.5 + 1e-3
        distance = np.hypot((pr - r[:, np.newaxis]) * sr, (pc - c[:, np.newaxis]) * sc)
        found = np.minimum(found, np.where(below, distance, np.inf).min(axis=1))
        return np.minimum(nearest, found)

    def _extreme(self, candidates, frames, centres, spacing_rc, reduce, empty) -> np.ndarray:
        plane, r, c = candidates
        position = np.full(len(self.measurable), -1)
        position[frames] = np.arange(frames.size)
        chosen = position[plane] >= 0
        p, r, c = position[plane[chosen]], r[chosen], c[chosen]
        out = np.full(frames.size, empty)
        if p.size:
            distance = np.hypot((r - centres[p, 0]) * spacing_rc[0], (c - centres[p, 1]) * spacing_rc[1])
            starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
            out[p[starts]] = reduce.reduceat(distance, starts)
        return out


_ANGLES = np.linspace(-np.pi, np.pi, CONTOUR_RAYS, endpoint=False)


def _first_crossings(
    walls: _SliceWalls, which: int, frames, centres, directions, spacing_rc, step_mm: float, reach_mm: float
) -> np.ndarray:
    """``(frames, rays)`` distance (mm) along each ray from each frame's centre to where the smoothed mask
    first falls below 0.5: found on samples one pixel apart, then placed within that pixel on eight finer
    samples (linear between them)."""
    coarse = np.arange(0.0, reach_mm + step_mm, step_mm)
    rays = directions.shape[0]

    def sample(chosen, distances, ray=None):
        """Values at ``distances`` ``(frames, rays, n)`` on every ray of the frames ``chosen``, or ``(points,
        n)`` on the ray ``ray`` of each."""
        if ray is None:
            rr = centres[chosen, 0, np.newaxis, np.newaxis] + directions[np.newaxis, :, 0:1] * distances
            cc = centres[chosen, 1, np.newaxis, np.newaxis] + directions[np.newaxis, :, 1:2] * distances
        else:
            rr = centres[chosen, 0, np.newaxis] + directions[ray, 0:1] * distances
            cc = centres[chosen, 1, np.newaxis] + directions[ray, 1:2] * distances
        return walls.sample(which, frames[chosen], rr, cc)

    # A sample farther than one pixel diagonal beyond every pixel at or above 0.5 interpolates values below
    # 0.5 only, so every ray is outside there: the coarse profile stops a little past that distance (most of
    # the reach is background), and the full reach is sampled only if some ray is still inside. Likewise a
    # sample nearer than one pixel diagonal short of every pixel below 0.5 is inside on every ray, so the
    # profile starts a step before that distance (the cavity, for the epicardium). Each frame starts at its
    # own distance; its samples past its own stop are outside or past the first crossing, so reading them
    # finds the same first crossing. Only what comes before a ray's first crossing decides it, so the first
    # few samples are read on every ray and the rest only on the rays still inside after them.
    # (reading in two parts pays for the second call when there are many frames, not for one or two)
    split = frames.size > 2
    first = np.zeros((frames.size, rays), dtype=np.intp)
    diagonal = float(np.hypot(*spacing_rc))
    bound = walls.farthest_half_mm(which, frames, centres, spacing_rc) + diagonal + 2 * step_mm
    lower = walls.nearest_below_half_mm(which, frames, centres, spacing_rc) - diagonal - step_mm
    start = np.where(lower > 0, np.searchsorted(coarse, lower), 0)
    stop = np.minimum(np.searchsorted(coarse, bound) + 1, coarse.size)
    is_near = (bound < coarse[-1]) & (stop > start)
    near = np.flatnonzero(is_near)
    if near.size:
        count = int((stop - start)[near].max())
        index = np.minimum(start[near, np.newaxis] + np.arange(count), coarse.size - 1)
        head = min(count, 4) if split else count
        outside = np.zeros((near.size, rays, count), dtype=bool)
        outside[..., :head] = sample(near, coarse[index[:, :head]][:, np.newaxis, :]) < 0.5
        f, j = np.nonzero(~outside[..., :head].any(axis=2)) if count > head else ((), ())
        if len(f):
            outside[f, j, head:] = sample(near[f], coarse[index[f, head:]], ray=j) < 0.5
        found = outside.any(axis=2).all(axis=1)
        first[near[found]] = start[near[found], np.newaxis] + np.argmax(outside[found], axis=2)
        is_near[near[~found]] = False
    full = np.flatnonzero(~is_near)
    if full.size:
        outside = sample(full, coarse[np.newaxis, np.newaxis, :]) < 0.5
        first[full] = np.where(outside.any(axis=2), np.argmax(outside, axis=2), coarse.size - 1)
    fine = coarse[np.clip(first - 1, 0, None)][..., np.newaxis] + np.linspace(0.0, step_mm, 9)
    # The first fine sample is the coarse one before the crossing, inside unless the crossing is at the
    # centre itself (then its value is not read); the four after it are read on every ray, the last four
    # where those are inside, and the first where the crossing lies within the first eighth.
    every = np.arange(frames.size)
    profile = np.ones(fine.shape, dtype=np.float32)
    if split:
        profile[..., 1:5] = sample(every, fine[..., 1:5])
        f, j = np.nonzero(~(profile[..., 1:5] < 0.5).any(axis=2))
        if f.size:
            profile[f, j, 5:] = sample(f, fine[f, j, 5:], ray=j)
    else:
        profile[..., 1:] = sample(every, fine[..., 1:])
    outside = profile < 0.5
    outside[..., 0] = first == 0
    index = np.where(outside.any(axis=2), np.argmax(outside, axis=2), 8)
    f, j = np.nonzero(index == 1)
    if f.size:
        profile[f, j, 0] = sample(f, fine[f, j, :1], ray=j)[:, 0]
    prev = np.clip(index - 1, 0, None)
    f, j = np.ogrid[: frames.size, :rays]
    v0, v1 = profile[f, j, prev], profile[f, j, index]
    frac = np.where(v0 != v1, (v0 - 0.5) / np.where(v0 != v1, v0 - v1, 1.0), 0.0)
    return fine[f, j, prev] + np.clip(frac, 0.0, 1.0) * (step_mm / 8.0)


def _smooth_circular(values: np.ndarray, sigma_rays: float) -> np.ndarray:
    """Fill NaN rays of each row by circular linear interpolation, then smooth along the circle."""
    values = values.copy()
    for row in np.flatnonzero(~np.isfinite(values).all(axis=1)):
        good = np.isfinite(values[row])
        if good.any():
            index = np.arange(values.shape[1])
            values[row] = np.interp(index, index[good], values[row][good], period=values.shape[1])
    return ndimage.gaussian_filter1d(values, sigma_rays, axis=1, mode="wrap") if sigma_rays > 0 else values


def _radii(walls: _SliceWalls, frames, centres, spacing_rc, reach_mm: float):
    """``(frames, rays)`` endocardial and epicardial radii (mm) on the rays from each frame's centre
    (pixels; ray angle ``atan2(d_row, d_col)`` in mm from -180 degrees), gaps filled and smoothed, and
    which rays crossed a wall."""
    sr, sc = spacing_rc
    directions = np.stack([np.sin(_ANGLES) / sr, np.cos(_ANGLES) / sc], axis=1)
    step = min(sr, sc)
    endo = _first_crossings(walls, 0, frames, centres, directions, spacing_rc, step, reach_mm)
    epi = _first_crossings(walls, 1, frames, centres, directions, spacing_rc, step, reach_mm)
    valid = epi - endo >= MIN_WALL_PX * min(sr, sc)
    endo, epi = np.where(valid, endo, np.nan), np.where(valid, epi, np.nan)
    sigma = CONTOUR_SMOOTHING_DEG * CONTOUR_RAYS / 360.0
    return _smooth_circular(endo, sigma), _smooth_circular(epi, sigma), valid


def _finite(centres: np.ndarray, endo: np.ndarray, epi: np.ndarray) -> np.ndarray:
    """Which frames have a finite centre and finite radii (a frame whose wall no ray crosses has not)."""
    return np.isfinite(centres).all(axis=1) & np.isfinite(endo).all(axis=1) & np.isfinite(epi).all(axis=1)


def lv_contours(labels_slice: np.ndarray, spacing_rc, reach_mm: float = 80.0):
    """``(centre, endo_mm, epi_mm, valid)`` of one slice about its cavity centroid (see :func:`_radii`),
    or ``None`` when the slice has too little cavity or myocardium."""
    return _reference_contours(_SliceWalls(np.asarray(labels_slice)[np.newaxis]), 0, spacing_rc, reach_mm)


def _reference_contours(walls: _SliceWalls, frame: int, spacing_rc, reach_mm: float):
    if not walls.measurable[frame]:
        return None
    centre = np.argwhere(walls.cavity[frame]).mean(axis=0)
    frames = np.array([frame])
    endo, epi, valid = _radii(walls, frames, centre[np.newaxis], spacing_rc, reach_mm)
    if not _finite(centre[np.newaxis], endo, epi)[0]:
        return None
    return centre, endo[0], epi[0], valid[0]


def _matched_contours(
    reference, walls: _SliceWalls, frames, spacing_rc, reach_mm: float, iterations: int = 4
):
    """The contours of tracked frames about the centre that best conserves the wall's area ray by ray:
    ``(centres, endo_mm, epi_mm)`` per frame, and which frames were followed (a frame with too little
    cavity or myocardium, or whose wall no ray crosses, is not).

    A rigid shift of the heart and a wall that stays still while the others contract both move the cavity
    centroid; the contours alone tell them apart by the wall: myocardium is nearly incompressible, so
    each sector's area ``epi^2 - endo^2`` keeps its share of the whole (a uniform change, from
    through-plane motion, is allowed), and only the true shift keeps it. Moving the centre by ``d`` (mm)
    changes a radius by about ``-d . e`` (``e`` the ray's direction), which makes the fit of ``d`` linear;
    a few Gauss-Newton steps from the reference centre converge. The frames are fitted together, each
    stopping when its own step is small.
    """
    frames = np.asarray(frames, dtype=np.intp)
    centre_ref, endo_ref, epi_ref, valid_ref = reference
    area_ref = epi_ref**2 - endo_ref**2
    sr, sc = spacing_rc
    e = np.stack([np.sin(_ANGLES), np.cos(_ANGLES)], axis=1)
    centres = np.tile(np.asarray(centre_ref, dtype=float), (frames.size, 1))
    endo = np.full((frames.size, CONTOUR_RAYS), np.nan)
    epi = np.full((frames.size, CONTOUR_RAYS), np.nan)
    active = walls.measurable[frames].copy()
    settled = np.zeros(frames.size, dtype=bool)  # radii already found at the final centre
    for _ in range(iterations):
        moving = np.flatnonzero(active)
        if not moving.size:
            break
        endo_i, epi_i, valid = _radii(walls, frames[moving], centres[moving], spacing_rc, reach_mm)
        use = valid & valid_ref
        for i, f in enumerate(moving):
            if use[i].sum() < CONTOUR_RAYS // 4 or not np.isfinite(area_ref).all():
                endo[f], epi[f], settled[f], active[f] = endo_i[i], epi_i[i], True, False
                continue
            width = epi_i[i] - endo_i[i]
            design = np.column_stack([-2 * width * e[:, 0], -2 * width * e[:, 1], -area_ref])[use[i]]
            step, *_ = np.linalg.lstsq(design, -(epi_i[i] ** 2 - endo_i[i] ** 2)[use[i]], rcond=None)
            centres[f] += (step[0] / sr, step[1] / sc)
            if np.hypot(step[0], step[1]) < 0.05 or not np.isfinite(centres[f]).all():
                active[f] = False
    left = np.flatnonzero(walls.measurable[frames] & ~settled & np.isfinite(centres).all(axis=1))
    if left.size:
        endo[left], epi[left], _ = _radii(walls, frames[left], centres[left], spacing_rc, reach_mm)
    followed = walls.measurable[frames] & _finite(centres, endo, epi)
    return centres, endo, epi, followed


# Gauss-Newton steps of the area-conserving fit after its linearised start (one number per ray): eight
# reach the least-squares optimum within 1e-5 mm^2 (a bounded scalar search's own tolerance) on 2,000
# random walls whose area changes by -10 to +50 %; two leave up to 0.2 mm^2.
AREA_FIT_STEPS = 8


def area_conserving_shrink(endo_mm, epi_mm, endo_frame_mm, epi_frame_mm) -> np.ndarray:
    """Per ray ``d`` (mm^2) of the in-plane map ``r = sqrt(R^2 - d)`` that carries the reference wall to
    the tracked frame's with each ring's area kept: the least-squares fit (in mm) of the map's endocardium
    and epicardium to the tracked ones.

    Myocardium is nearly incompressible; with the through-plane motion ignored, a wall moving in the plane
    keeps its area (the module's docstring says why the segmented wall does not, and what that does to
    radial strain). Both borders are fitted, so neither decides alone. ``d`` stays below the reference
    endocardium's ``R^2`` (a cavity of zero radius at most). The tracked radii may be ``(frames, rays)``,
    all frames fitted at once.
    """
    endo_mm, epi_mm, endo_frame_mm, epi_frame_mm = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (endo_mm, epi_mm, endo_frame_mm, epi_frame_mm))
    )
    targets = np.stack([endo_frame_mm, epi_frame_mm])
    references = np.stack([endo_mm, epi_mm]) ** 2
    # linearised start: each border's own d, weighted by how much a change of d moves it (1 / (2 r))^2
    weights = 1.0 / np.maximum(targets, 1e-3) ** 2
    shrink = (weights * (references - targets**2)).sum(axis=0) / weights.sum(axis=0)
    limit = 0.999 * endo_mm**2
    for _ in range(AREA_FIT_STEPS):
        shrink = np.minimum(shrink, limit)
        radii = np.sqrt(np.maximum(references - shrink, 1e-12))
        slope = -0.5 / radii  # d radius / d shrink
        shrink = shrink - (slope * (radii - targets)).sum(axis=0) / (slope**2).sum(axis=0)
    return np.minimum(shrink, limit)


@dataclass
class SliceContours:
    """The contour methods' result for one slice, from which its displacement is computed wherever
    it is needed: the reference frame's cavity centre (image pixels) and endocardial and epicardial radii
    (mm, :data:`CONTOUR_RAYS` rays), and per tracked frame the same (``(frames, 2)`` and
    ``(frames, rays)``), with ``followed`` false where the wall could not be followed in a frame and
    ``moved`` false for the reference frame itself (no displacement); ``incompressible`` chooses the
    field between the borders (``"contours"``, else ``"walls"``)."""

    centre: np.ndarray
    endo_mm: np.ndarray
    epi_mm: np.ndarray
    centres: np.ndarray
    endo_frames_mm: np.ndarray
    epi_frames_mm: np.ndarray
    followed: np.ndarray
    moved: np.ndarray
    incompressible: bool = True

    def displacement_mm(self, rows: np.ndarray, cols: np.ndarray, spacing_rc) -> np.ndarray:
        """``(frames, points, 2)`` displacement (mm) of the reference points at image pixels ``(rows,
        cols)`` to their points in each tracked frame on the ray of the same angle (about each frame's
        own centre): with ``incompressible`` at the radius that keeps each ring's area
        (:func:`area_conserving_shrink`), else at the same transmural fraction (the boundaries onto the
        boundaries, the wall in between linearly); zero in the reference frame, NaN where the wall was
        not followed."""
        sr, sc = spacing_rc
        c_ref = self.centre
        dy = (np.asarray(rows, dtype=float) - c_ref[0]) * sr
        dx = (np.asarray(cols, dtype=float) - c_ref[1]) * sc
        radius = np.hypot(dy, dx)
        angle = np.arctan2(dy, dx)
        sin, cos = np.sin(angle), np.cos(angle)
        position = (angle + np.pi) / (2 * np.pi) * CONTOUR_RAYS
        ray_index = np.arange(CONTOUR_RAYS + 1)

        def at(values):
            return np.interp(position, ray_index, np.append(values, values[0]))

        e0, w0 = at(self.endo_mm), at(self.epi_mm) - at(self.endo_mm)
        out = np.zeros((self.moved.size, radius.size, 2))
        if self.incompressible:  # every frame's fit on the rays in one call
            fitted = np.flatnonzero(self.moved & self.followed)
            shrinks = np.zeros(self.endo_frames_mm.shape)
            if fitted.size:
                shrinks[fitted] = area_conserving_shrink(
                    self.endo_mm, self.epi_mm, self.endo_frames_mm[fitted], self.epi_frames_mm[fitted]
                )
            inside = np.minimum(radius / np.maximum(e0, 1e-3), 1.0)  # in the cavity: of the endocardium's
        else:
            fraction = (radius - e0) / np.maximum(w0, 1e-3)  # transmural fraction
        for p in np.flatnonzero(self.moved):
            if not self.followed[p]:  # no wall to follow in this frame: unknown, not still
                out[p] = np.nan
                continue
            if self.incompressible:
                shrink = at(shrinks[p])
                moved = np.sqrt(np.maximum(radius**2 - shrink, 0.0))
                endo_moved = np.maximum(np.sqrt(np.maximum(e0**2 - shrink, 0.0)), 1e-3)
                # the blood follows a power of the radius whose slope at the endocardium is the wall's there
                # (R / r), so that the differences of the field across the border read the wall's strain
                blood = endo_moved * np.power(inside, (e0 / endo_moved) ** 2)
            else:
                e1, w1 = at(self.endo_frames_mm[p]), at(self.epi_frames_mm[p]) - at(self.endo_frames_mm[p])
                moved = e1 + fraction * w1
                blood = radius * e1 / np.maximum(e0, 1e-3)  # the endocardium's motion, scaled
            # inside the cavity the blood moves with the endocardium, so the field stays smooth there
            moved = np.where(radius < e0, blood, moved)
            out[p, :, 0] = (self.centres[p, 0] - c_ref[0]) * sr + moved * sin - dy
            out[p, :, 1] = (self.centres[p, 1] - c_ref[1]) * sc + moved * cos - dx
        return out


@dataclass
class InPlaneMotion:
    """Displacements (mm) from the reference frame to each tracked frame, per slice, in a box around the LV.

    ``reference_index`` and ``frame_indices`` are positions on the cine's time axis. ``boxes[k]`` is the
    ``(row slice, col slice)`` of slice ``k``'s box in the image (``None`` where the slice has no
    measurable LV at the reference), and ``displacement_mm[k]`` the ``(frames, rows, cols, 2)`` field on
    that box: ``(d_row, d_col)`` in mm for each tracked frame, zero for the reference itself and NaN
    where the slice's wall could not be followed in that frame.
    ``spacing_rc_mm`` is the in-plane ``(row, col)`` spacing; ``method`` the input registered.
    The contour methods keep their ``contours`` (per slice, ``None`` where the reference frame has
    none to follow: no displacement) and compute the field from them where it is read: the whole box on
    the first read of ``displacement_mm``, chosen pixels with :meth:`displacement_at` (strain reads the
    wall only, a tenth of the box).
    """

    reference_index: int
    frame_indices: list[int]
    boxes: list[tuple[slice, slice] | None]
    spacing_rc_mm: tuple[float, float]
    method: str
    seconds: float = 0.0
    contours: list[SliceContours | None] | None = None
    fields_mm: list[np.ndarray | None] | None = field(default=None, repr=False)

    @property
    def displacement_mm(self) -> list[np.ndarray | None]:
        if self.fields_mm is None:
            fields: list[np.ndarray | None] = []
            for k, box in enumerate(self.boxes):
                if box is None:
                    fields.append(None)
                    continue
                shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
                rows, cols = np.indices(shape).reshape(2, -1)
                fields.append(self.displacement_at(k, rows, cols).reshape((-1,) + shape + (2,)))
            self.fields_mm = fields
        return self.fields_mm

    def displacement_at(self, k: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``(frames, points, 2)`` displacement (mm) of slice ``k`` at the pixels ``(rows, cols)`` of its box,
        the values of ``displacement_mm[k][:, rows, cols]``."""
        box = self.boxes[k]
        if self.contours is None:
            return self.displacement_mm[k][:, rows, cols]
        if self.contours[k] is None:
            return np.zeros((len(self.frame_indices), np.size(rows), 2))
        return self.contours[k].displacement_mm(
            np.asarray(rows) + box[0].start, np.asarray(cols) + box[1].start, self.spacing_rc_mm
        )

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
        union = _lv_mask(labels[sorted(set(frames) | {reference}), k]).any(axis=0)
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
    ``smoothing_px`` (the Gaussian regularisation of the field, in pixels) of the demons methods default
    to :data:`DEMONS_DEFAULTS`; the contour methods read neither.
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
    settings = dict(DEMONS_DEFAULTS.get(method, {}))
    settings.update(
        {k: v for k, v in (("iterations", iterations), ("smoothing_px", smoothing_px)) if v is not None}
    )
    spacing_rc = cine.inplane_spacing_rc_mm
    boxes, (height, width) = _boxes(labels, frames, reference_index, spacing_rc)
    tracked = [k for k, box in enumerate(boxes) if box is not None]
    moving_frames = [t for t in frames if t != reference_index]
    if method in CONTOUR_METHODS and tracked and moving_frames:
        reach = 0.5 * float(np.hypot(height * spacing_rc[0], width * spacing_rc[1]))
        contours: list[SliceContours | None] = [None] * len(boxes)
        planes = sorted(set(frames) | {reference_index})
        plane_of = {t: i for i, t in enumerate(planes)}
        # a frame listed twice is filled at its first position, as the fields were
        moved = np.array([t != reference_index and frames.index(t) == p for p, t in enumerate(frames)])
        moving_planes = [plane_of[t] for t, m in zip(frames, moved, strict=True) if m]

        def follow(k: int) -> None:
            box = boxes[k]
            offset = np.array([box[0].start, box[1].start], dtype=float)
            # contours are found in the box (cheap), then placed in the image; all frames at once
            walls = _SliceWalls(labels[planes, k][:, box[0], box[1]])
            reference = _reference_contours(walls, plane_of[reference_index], spacing_rc, reach)
            if reference is None:
                return
            centres, endo, epi, followed = _matched_contours(
                reference, walls, moving_planes, spacing_rc, reach
            )
            at_frame = np.full(len(frames), -1)
            at_frame[moved] = np.arange(int(moved.sum()))
            pick = np.maximum(at_frame, 0)
            contours[k] = SliceContours(
                centre=reference[0] + offset,
                endo_mm=reference[1],
                epi_mm=reference[2],
                centres=centres[pick] + offset,
                endo_frames_mm=endo[pick],
                epi_frames_mm=epi[pick],
                followed=followed[pick] & moved,
                moved=moved,
                incompressible=CONTOUR_METHODS[method],
            )

        # slices are independent and numpy's and scipy's array work releases the GIL: one thread per core;
        # with one or two frames to follow a slice's work is small calls that hold it, and threads contend
        workers = min(len(tracked), _cores()) if len(moving_planes) > 2 else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(follow, tracked))
        return InPlaneMotion(
            reference_index=int(reference_index),
            frame_indices=frames,
            boxes=boxes,
            spacing_rc_mm=spacing_rc,
            method=method,
            seconds=time.perf_counter() - start,
            contours=contours,
        )
    fields: list[np.ndarray | None] = [
        None if box is None else np.zeros((len(frames), height, width, 2)) for box in boxes
    ]
    if tracked and moving_frames and method not in CONTOUR_METHODS:
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
        spacing_rc_mm=spacing_rc,
        method=method,
        seconds=time.perf_counter() - start,
        fields_mm=fields,
    )
