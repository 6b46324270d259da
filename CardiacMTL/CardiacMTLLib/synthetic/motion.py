"""A synthetic short-axis cine whose myocardial motion, and so its radial and circumferential strain, is
known exactly: per pixel, per AHA segment and globally, from end-diastole to every frame.

Each slice is a ring model of the LV (circular cavity and epicardium, smaller towards the apex) with an RV
crescent on the septum, surrounded by fat and textured tissue. A material point at ED polar position
``(R, T)`` about the LV centre moves in plane to ``r = sqrt(R^2 - d(T, t))`` at angle ``T + w(t)``, plus
a translation of the whole heart: ``d`` sets the endocardial circumferential shortening at each angle,
the map conserves the area of every ring (an incompressible wall thickens as it shortens), ``w`` is a
rigid rotation per slice (base and apex twist in opposite directions) and neither rotation nor
translation strains anything. The Lagrangian strains are engineering strains, stretch minus one, of
the material fibres that at ED point radially and circumferentially from the LV centre:
``radial = R / r - 1`` and ``circumferential = sqrt(r^2 + (dr/dT)^2) / R - 1``. An akinetic segment (an
infarct pattern) keeps ``d = 0`` over its angles at its level, with a smooth ramp into the neighbouring
segments; global hypokinesia (dilated cardiomyopathy) scales the shortening of every segment. The true
segmental and global values are the means of the exact pixel strains over the ED myocardium pixels of a
segment or of the whole LV, as the measurement averages them. The AHA segments follow the project's
convention (:func:`CardiacMTLLib.analysis.indices.aha_wall_thickness_mm`): basal, mid and apical thirds
of the slices from the base, angles from the middle of the septum (the RV direction), positive towards
the anterior RV insertion, which in an image without patient orientation lies up, counter-clockwise of
the RV in the ``(col, row)`` frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.synthetic.anatomy import SIGNAL_SCALE, contraction
from CardiacMTLLib.types import Cine, Label

# AHA segments as (first angle, last angle, segment) in degrees from the middle of the septum, positive
# towards the anterior insertion (Cerqueira et al. 2002); written out here, independently of the
# analysis, so that a test of the measured segments also tests their orientation.
_BASAL = ((60, 120, 1), (0, 60, 2), (-60, 0, 3), (-120, -60, 4), (-180, -120, 5), (120, 180, 6))
_MID = tuple((a, b, s + 6) for a, b, s in _BASAL)
_APICAL = ((45, 135, 13), (-45, 45, 14), (-135, -45, 15), (135, 225, 16))
LEVEL_TABLES = (_BASAL, _MID, _APICAL)
# Width (degrees) over which an akinetic segment's neighbours recover their full shortening.
AKINETIC_RAMP_DEG = 20.0
_INTENSITY = {"blood": 1.0, "rv_blood": 0.86, "myocardium": 0.27, "fat": 0.85, "tissue": 0.36, "wall": 0.3}
FAT_MM = 2.5
RV_WALL_MM = 3.0


@dataclass
class MotionCase:
    """A generated cine with its exact motion and strain.

    ``labels`` is ``(frames, slices, rows, cols)`` (0 background, 1 RV, 2 myocardium, 3 LV cavity).
    ``rv_insertions`` maps each slice to its ED ``(anterior, inferior)`` RV insertion points, ``(row,
    col)`` pixels, as :func:`~CardiacMTLLib.analysis.indices.aha_wall_thickness_mm` takes them.
    ``global_radial_pct``/``global_circumferential_pct`` are ``(frames,)`` strains (%) from ED (frame
    ``ed_index``) to each frame; ``segment_radial_pct``/``segment_circumferential_pct`` map AHA segments
    1-16 to ``(frames,)`` curves; ``segment_thickening_pct`` maps them to the ED-to-ES wall thickening
    (%). ``segment_map`` is ``(slices, rows, cols)``: the AHA segment of each ED myocardium pixel (0
    elsewhere); ``akinetic_segments`` the segments made akinetic; ``hypokinesia`` the factor that scaled
    every segment's shortening (1 normal).
    """

    cine: Cine
    labels: np.ndarray
    ed_index: int
    es_index: int
    rv_insertions: dict[int, tuple]
    global_radial_pct: np.ndarray
    global_circumferential_pct: np.ndarray
    segment_radial_pct: dict[int, np.ndarray]
    segment_circumferential_pct: dict[int, np.ndarray]
    segment_thickening_pct: dict[int, float]
    segment_map: np.ndarray
    akinetic_segments: list[int] = field(default_factory=list)
    hypokinesia: float = 1.0


def segment_level(segment: int) -> int:
    """0 basal (1-6), 1 mid (7-12), 2 apical (13-16)."""
    if not 1 <= int(segment) <= 16:
        raise CardiacInputError(f"AHA segments are 1-16, got {segment}")
    return 0 if segment <= 6 else 1 if segment <= 12 else 2


def _segment_span(segment: int) -> tuple[float, float]:
    for first, last, s in LEVEL_TABLES[segment_level(segment)]:
        if s == segment:
            return float(first), float(last)
    raise AssertionError(segment)


def _wrap(angle_deg):
    return (np.asarray(angle_deg, dtype=float) + 180.0) % 360.0 - 180.0


def _shortening_weight(relative_deg: np.ndarray, segment: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The factor 0..1 of the normal shortening at each angle (0 over the akinetic segment, a cosine ramp
    into its neighbours) and its derivative per radian."""
    weight = np.ones_like(relative_deg)
    slope = np.zeros_like(relative_deg)
    if segment is None:
        return weight, slope
    first, last = _segment_span(segment)
    centre, half = (first + last) / 2.0, (last - first) / 2.0
    # distance (degrees) beyond the segment's edge, signed by the side
    offset = _wrap(relative_deg - centre)
    beyond = np.abs(offset) - half
    inside = beyond <= 0
    ramp = (beyond > 0) & (beyond < AKINETIC_RAMP_DEG)
    x = np.clip(beyond / AKINETIC_RAMP_DEG, 0.0, 1.0)
    weight = np.where(inside, 0.0, np.where(ramp, 0.5 * (1 - np.cos(np.pi * x)), 1.0))
    # d weight / d angle (radians): d/dx * dx/d|offset| * d|offset|/d angle
    dweight = 0.5 * np.pi * np.sin(np.pi * x) / AKINETIC_RAMP_DEG * np.sign(offset) * (180.0 / np.pi)
    slope = np.where(ramp, dweight, 0.0)
    return weight, slope


def _segments_of(relative_deg: np.ndarray, level: int) -> np.ndarray:
    out = np.zeros(relative_deg.shape, dtype=np.int16)
    for first, last, segment in LEVEL_TABLES[level]:
        out[(relative_deg - first) % 360.0 < last - first] = segment
    return out


def _smooth_texture(rng: np.random.Generator, shape: tuple, sigma_px: float) -> np.ndarray:
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return texture / (texture.std() + 1e-12)


def generate_motion_cine(
    seed: int = 0,
    num_frames: int = 20,
    shape: tuple[int, int, int] = (128, 128, 9),
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 8.0),
    noise_std: float = 0.03,
    endocardial_shortening: float = 0.3,
    hypokinesia: float = 1.0,
    akinetic_segment: int | None = None,
    lv_radius_mm: float = 25.0,
    wall_thickness_mm: float = 9.0,
    translation_mm: float = 3.0,
    twist_deg: float = 6.0,
    es_fraction: float = 0.375,
    rr_interval_ms: float = 900.0,
) -> MotionCase:
    """Generate a short-axis cine with exactly known in-plane motion and strain.

    ``shape`` is ``(rows, cols, slices)`` and ``spacing_mm`` ``(col, row, slice)`` as in :class:`Cine`;
    slice 0 is the base. ``endocardial_shortening`` (0..0.6) is the endocardial circumferential
    shortening at end-systole of a normal segment (0.3: about -20 % mid-wall GCS and +30 % GRS);
    ``hypokinesia`` (0..1) scales it everywhere (dilated cardiomyopathy: 0.3-0.5); ``akinetic_segment``
    (1-16) keeps one segment still (an infarct). ``translation_mm`` is the largest shift of the whole
    heart and ``twist_deg`` the largest rotation of the basal and apical slices (opposite directions),
    both at end-systole: motion without strain. The seed varies the sizes by a few %, the RV direction,
    the motion directions, the texture and the Rician noise (``noise_std`` relative to blood).
    """
    rows, cols, num_slices = (int(n) for n in shape)
    if min(rows, cols) < 48 or num_slices < 3:
        raise CardiacInputError(f"shape must be (rows >= 48, cols >= 48, slices >= 3), got {shape}")
    if num_frames < 2:
        raise CardiacInputError(f"num_frames must be at least 2, got {num_frames}")
    if not 0.0 <= endocardial_shortening <= 0.6 or not 0.0 <= hypokinesia <= 1.0:
        raise CardiacInputError(
            "endocardial_shortening must be in 0..0.6 and hypokinesia in 0..1, got "
            f"{endocardial_shortening} and {hypokinesia}"
        )
    if akinetic_segment is not None:
        segment_level(akinetic_segment)
    sx, sy, sz = (float(s) for s in spacing_mm)
    if min(sx, sy, sz) <= 0:
        raise CardiacInputError(f"spacing_mm must be positive, got {spacing_mm}")
    rng = np.random.default_rng(seed)
    radius = lv_radius_mm * rng.uniform(0.94, 1.06)
    wall = wall_thickness_mm * rng.uniform(0.92, 1.08)
    shortening = endocardial_shortening * hypokinesia * rng.uniform(0.95, 1.05)
    rv_angle = np.deg2rad(155.0 + rng.uniform(-15, 15))
    rv_wrap = np.deg2rad(65.0 + rng.uniform(-8, 8))
    rv_depth = 16.0 * rng.uniform(0.85, 1.15)
    centre_xy = np.array([cols * sx / 2 + rng.uniform(-5, 5), rows * sy / 2 + rng.uniform(-5, 5)])
    if (
        min(centre_xy[0], cols * sx - centre_xy[0], centre_xy[1], rows * sy - centre_xy[1])
        < radius + wall + 8
    ):
        raise CardiacInputError(
            f"a field of view of {cols * sx:.0f} x {rows * sy:.0f} mm is too small for an LV of radius "
            f"{radius + wall:.0f} mm"
        )
    move_angle = rng.uniform(0, 2 * np.pi)
    translation_xy = translation_mm * np.array([np.cos(move_angle), np.sin(move_angle)])
    twist_sign = rng.choice([-1.0, 1.0])

    es_index = int(np.clip(round(es_fraction * num_frames), 1, num_frames - 1))
    squeeze = contraction(np.arange(num_frames) / num_frames, es_index / num_frames)
    levels = np.array_split(np.arange(num_slices), 3)
    level_of = {int(k): i for i, level in enumerate(levels) for k in level}
    akinetic_level = None if akinetic_segment is None else segment_level(akinetic_segment)

    y_mm = (np.arange(rows) * sy)[:, np.newaxis] * np.ones((1, cols))
    x_mm = (np.arange(cols) * sx)[np.newaxis, :] * np.ones((rows, 1))
    texture = _smooth_texture(rng, (num_slices, rows, cols), 1.5)

    images = np.zeros((num_frames, num_slices, rows, cols), dtype=np.float32)
    labels = np.zeros((num_frames, num_slices, rows, cols), dtype=np.uint8)
    pixel_radial = np.full((num_frames, num_slices, rows, cols), np.nan)
    pixel_circ = np.full_like(pixel_radial, np.nan)
    segment_map = np.zeros((num_slices, rows, cols), dtype=np.int16)
    thickness = {s: [[], []] for s in range(1, 17)}  # segment -> [ED, ES] mean thickness per slice
    insertions = {}
    fine_angles = np.linspace(-180.0, 180.0, 721)[:-1]
    for k in range(num_slices):
        depth = k / (num_slices - 1)
        r_endo = radius * (1.0 - 0.55 * depth)
        r_epi = r_endo + wall * (1.0 - 0.25 * depth)
        twist = np.deg2rad(twist_deg) * twist_sign * (1.0 - 2.0 * depth)
        level = level_of[k]
        segment_here = akinetic_segment if akinetic_level == level else None

        def shrink(relative_deg, c, r_endo=r_endo, segment_here=segment_here):
            """d(T, t) (mm^2) and its derivative per radian at contraction c."""
            weight, slope = _shortening_weight(relative_deg, segment_here)
            stretch = 1.0 - shortening * c * weight
            return r_endo**2 * (1.0 - stretch**2), r_endo**2 * 2.0 * stretch * shortening * c * slope

        for t in range(num_frames):
            c = float(squeeze[t])
            centre = centre_xy + c * translation_xy
            dx, dy = x_mm - centre[0], y_mm - centre[1]
            r = np.hypot(dx, dy)
            material_angle = np.arctan2(dy, dx) - c * twist
            relative = np.rad2deg(_wrap_rad(material_angle - rv_angle))
            d, _ = shrink(relative, c)
            big_r = np.sqrt(r**2 + d)  # the material radius of what is now at r
            label = np.zeros((rows, cols), dtype=np.uint8)
            rv_extent = rv_depth * np.sqrt(np.clip(1.0 - (np.deg2rad(relative) / rv_wrap) ** 2, 0.0, None))
            rv = (big_r >= r_epi) & (big_r < r_epi + rv_extent)
            label[big_r < r_epi] = Label.LV_MYOCARDIUM
            label[big_r < r_endo] = Label.LV_CAVITY
            label[rv] = Label.RV_CAVITY
            labels[t, k] = label
            # intensities: tissue whose texture moves with it
            mx = centre_xy[0] + big_r * np.cos(material_angle)
            my = centre_xy[1] + big_r * np.sin(material_angle)
            tex = ndimage.map_coordinates(texture[k], [my / sy, mx / sx], order=1, mode="nearest")
            image = np.full((rows, cols), _INTENSITY["tissue"]) * (1 + 0.08 * tex)
            image[(big_r >= r_epi) & (big_r < r_epi + FAT_MM)] = _INTENSITY["fat"]
            image[(big_r >= r_epi) & (big_r < r_epi + rv_extent + RV_WALL_MM) & (rv_extent > 0)] = _INTENSITY[
                "wall"
            ]
            image[rv] = _INTENSITY["rv_blood"]
            myo = label == Label.LV_MYOCARDIUM
            image[myo] = _INTENSITY["myocardium"] * (1 + 0.12 * tex[myo])
            image[label == Label.LV_CAVITY] = _INTENSITY["blood"]
            images[t, k] = image

        # exact strain of the ED myocardium pixels (ED is frame 0, contraction 0: material = ED position)
        dx, dy = x_mm - centre_xy[0], y_mm - centre_xy[1]
        big_r = np.hypot(dx, dy)
        relative = np.rad2deg(_wrap_rad(np.arctan2(dy, dx) - rv_angle))
        myo = labels[0, k] == Label.LV_MYOCARDIUM
        segment_map[k][myo] = _segments_of(relative, level)[myo]
        for t in range(num_frames):
            d, dd = shrink(relative[myo], float(squeeze[t]))
            r = np.sqrt(big_r[myo] ** 2 - d)
            pixel_radial[t, k][myo] = big_r[myo] / r - 1.0
            pixel_circ[t, k][myo] = np.hypot(r, -dd / (2.0 * r)) / big_r[myo] - 1.0
        # wall thickness at ED and ES along the angles of each segment
        d_es, _ = shrink(fine_angles, float(squeeze[es_index]))
        width_es = np.sqrt(r_epi**2 - d_es) - np.sqrt(r_endo**2 - d_es)
        fine_segments = _segments_of(fine_angles, level)
        for segment in np.unique(fine_segments):
            thickness[int(segment)][0].append(r_epi - r_endo)
            thickness[int(segment)][1].append(float(width_es[fine_segments == segment].mean()))
        # the insertions lie where the RV crescent ends on the epicardium, the anterior one counter-clockwise
        points = []
        for side in (1.0, -1.0):
            angle = rv_angle + side * rv_wrap
            points.append(
                ((centre_xy[1] + r_epi * np.sin(angle)) / sy, (centre_xy[0] + r_epi * np.cos(angle)) / sx)
            )
        insertions[k] = (points[0], points[1])

    # partial volume, then Rician noise
    images = ndimage.gaussian_filter(images, sigma=(0, 0, 0.7, 0.7))
    real = images + noise_std * rng.standard_normal(images.shape, dtype=np.float32)
    imaginary = noise_std * rng.standard_normal(images.shape, dtype=np.float32)
    images = np.rint(np.hypot(real, imaginary) * SIGNAL_SCALE).astype(np.float32)
    affine = np.diag([sx, sy, sz, 1.0])
    cine = Cine(
        data=images,
        spacing_mm=(sx, sy, sz),
        affine=affine,
        frame_numbers=list(range(num_frames)),
        source=f"synthetic motion cine (seed {seed})",
        trigger_times_ms=[round(float(t * rr_interval_ms / num_frames), 3) for t in range(num_frames)],
        image_stems=["synthetic_motion_cine"],
    )
    myo_all = segment_map > 0

    def mean_pct(values, mask):
        return 100.0 * values[:, mask].mean(axis=1)

    return MotionCase(
        cine=cine,
        labels=labels,
        ed_index=0,
        es_index=es_index,
        rv_insertions=insertions,
        global_radial_pct=mean_pct(pixel_radial, myo_all),
        global_circumferential_pct=mean_pct(pixel_circ, myo_all),
        segment_radial_pct={s: mean_pct(pixel_radial, segment_map == s) for s in range(1, 17)},
        segment_circumferential_pct={s: mean_pct(pixel_circ, segment_map == s) for s in range(1, 17)},
        segment_thickening_pct={
            s: 100.0 * (np.mean(es) / np.mean(ed) - 1.0) for s, (ed, es) in thickness.items() if ed
        },
        segment_map=segment_map,
        akinetic_segments=[] if akinetic_segment is None else [int(akinetic_segment)],
        hypokinesia=float(hypokinesia),
    )


def _wrap_rad(angle):
    return (np.asarray(angle, dtype=float) + np.pi) % (2 * np.pi) - np.pi
