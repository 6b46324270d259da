"""Clinical indices from label maps: volumes, ejection fractions, mass, wall thickness, BSA, ED/ES choice.

Volumes are voxel counts times the voxel volume (the convention of the ACDC challenge and of most
clinical software working on short-axis stacks: each slice's area times the slice spacing). Labels:
0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity. Label maps are ``(slices, rows, cols)`` (one
frame) or ``(frames, slices, rows, cols)``, and ``spacing_mm`` is ``(col, row, slice)`` as in
:class:`~CardiacMTLLib.cine.Cine`. Numpy and scipy only, so indices work without torch.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.masks import fill_holes
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import Label

MYOCARDIAL_DENSITY_G_PER_ML = 1.05
# Rays from the LV cavity centroid at which wall thickness is measured (1 degree apart).
THICKNESS_RAYS = 360
# Distance maps for wall thickness are computed on a grid this many times finer than the label map.
THICKNESS_UPSAMPLING = 4
# The maximal thickness of a slice is the largest median of this many neighbouring rays (11 degrees):
# a real thick segment spans tens of degrees, a pixel corner of the label map only one or two rays.
MAX_THICKNESS_WINDOW = 11
# Slices whose LV cavity or myocardium has fewer pixels than this give no wall thickness (apex tip).
MIN_SLICE_PIXELS = 5


def _check_spacing(spacing_mm) -> tuple[float, float, float]:
    try:
        spacing = tuple(float(s) for s in spacing_mm)
    except (TypeError, ValueError) as e:
        raise CardiacInputError(f"spacing_mm must be three positive numbers (mm), got {spacing_mm!r}") from e
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise CardiacInputError(f"spacing_mm must be three positive numbers (mm), got {spacing_mm!r}")
    return spacing


def _check_labels(labels, ndim: int, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != ndim:
        axes = "(slices, rows, cols)" if ndim == 3 else "(frames, slices, rows, cols)"
        raise CardiacInputError(f"{name} must be a {ndim}D label map {axes}, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise CardiacInputError(
            f"{name}: label values must be 0..3 (0 background, 1 RV, 2 myocardium, 3 LV), "
            f"got {labels.min()}..{labels.max()}"
        )
    return labels


def label_volumes_ml(labels: np.ndarray, spacing_mm) -> dict[str, float]:
    """``{"LV", "RV", "Myo"}`` volumes in mL of a ``(slices, rows, cols)`` label map: count x voxel volume."""
    labels = _check_labels(labels, 3)
    voxel_ml = float(np.prod(_check_spacing(spacing_mm))) / 1000.0
    counts = {
        k: np.count_nonzero(labels == k) for k in (Label.LV_CAVITY, Label.RV_CAVITY, Label.LV_MYOCARDIUM)
    }
    return {
        "LV": float(counts[Label.LV_CAVITY] * voxel_ml),
        "RV": float(counts[Label.RV_CAVITY] * voxel_ml),
        "Myo": float(counts[Label.LV_MYOCARDIUM] * voxel_ml),
    }


def volume_curve_ml(labels_4d: np.ndarray, spacing_mm) -> dict[str, np.ndarray]:
    """Per-frame ``{"LV", "RV", "Myo"}`` volumes (mL) of a ``(frames, slices, rows, cols)`` label series."""
    labels_4d = _check_labels(labels_4d, 4, "labels_4d")
    volumes = [label_volumes_ml(frame, spacing_mm) for frame in labels_4d]
    return {key: np.array([v[key] for v in volumes], dtype=float) for key in ("LV", "RV", "Myo")}


def bsa_dubois(height_cm: float, weight_kg: float) -> float:
    """Body surface area in m2 (DuBois & DuBois 1916): 0.007184 x W^0.425 x H^0.725."""
    if not (np.isfinite(height_cm) and np.isfinite(weight_kg) and height_cm > 0 and weight_kg > 0):
        raise CardiacInputError(
            f"height and weight must be positive numbers, got {height_cm} cm and {weight_kg} kg"
        )
    return float(0.007184 * weight_kg**0.425 * height_cm**0.725)


def select_end_diastole_systole(lv_volumes_ml) -> tuple[int, int]:
    """Positions on the time axis of end-diastole (largest LV cavity) and end-systole (smallest)."""
    volumes = np.asarray(lv_volumes_ml, dtype=float).ravel()
    if volumes.size == 0:
        raise CardiacInputError("no LV volumes to choose end-diastole and end-systole from (0 frames)")
    return int(np.argmax(volumes)), int(np.argmin(volumes))


def _slice_wall_thickness_mm(cavity: np.ndarray, myocardium: np.ndarray, spacing_rc) -> np.ndarray:
    """Wall thickness (mm) of one short-axis slice on rays from the cavity centroid, NaN where a ray
    crosses no myocardium.

    Each ray is followed through its first run of myocardium after the cavity (so the RV free wall or a
    detached papillary muscle beyond it never counts), and the thickness is read at the run's midline,
    where the distance to the endocardium equals the distance to the epicardium: there the sum of the two
    distances is the wall's width perpendicular to the wall, whatever angle the ray crosses it at. A
    plain ray length would overestimate wherever the ray is oblique (off-centre or crescent cavities,
    the septum beside the RV insertions), which is exactly where the maximal thickness is looked for.
    The boundaries are the 0.5 level of the lightly smoothed masks upsampled 4 times: a smooth contour
    through the pixel-edge midpoints, as a drawn contour would be. On the raw staircase the corners
    nearest to the midline shorten both distances, which underestimates every wall by about half a pixel.
    """
    heart = cavity | myocardium
    rows, cols = np.nonzero(heart)
    margin = 2
    r0, c0 = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
    r1, c1 = rows.max() + margin + 1, cols.max() + margin + 1
    f = THICKNESS_UPSAMPLING

    def smooth_upsampled(mask: np.ndarray) -> np.ndarray:
        indicator = ndimage.gaussian_filter(np.pad(mask[r0:r1, c0:c1], margin).astype(float), 0.5)
        return ndimage.zoom(indicator, f, order=1, grid_mode=True, mode="nearest") >= 0.5

    cavity_up, heart_up = smooth_upsampled(cavity), smooth_upsampled(heart)
    myo_up = heart_up & ~cavity_up
    sampling = (spacing_rc[0] / f, spacing_rc[1] / f)
    to_endocardium = ndimage.distance_transform_edt(~cavity_up, sampling=sampling)
    to_epicardium = ndimage.distance_transform_edt(heart_up, sampling=sampling)

    # centroid and rays in fine-grid pixel coordinates (a coarse pixel centre p maps to (p + 0.5) f - 0.5)
    centre = (np.argwhere(cavity).mean(axis=0) - (r0, c0) + margin + 0.5) * f - 0.5
    step = 0.5  # fine pixels: an eighth of a label-map pixel
    reach = np.hypot(*heart_up.shape)
    distances = np.arange(0.0, reach, step)
    angles = np.linspace(0.0, 2 * np.pi, THICKNESS_RAYS, endpoint=False)
    # rays are straight in millimetres, so anisotropic pixels bend them in pixel units
    dr = np.sin(angles) / spacing_rc[0]
    dc = np.cos(angles) / spacing_rc[1]
    norm = np.maximum(np.abs(dr), np.abs(dc))
    rr = centre[0] + np.outer(dr / norm, distances)
    cc = centre[1] + np.outer(dc / norm, distances)
    inside = (rr >= 0) & (rr <= heart_up.shape[0] - 1) & (cc >= 0) & (cc <= heart_up.shape[1] - 1)
    ri = np.clip(np.rint(rr), 0, heart_up.shape[0] - 1).astype(int)
    ci = np.clip(np.rint(cc), 0, heart_up.shape[1] - 1).astype(int)
    on_myo = myo_up[ri, ci] & inside

    index = np.arange(distances.size)
    has_myo = on_myo.any(axis=1)
    start = np.argmax(on_myo, axis=1)
    after = ~on_myo & (index[np.newaxis, :] > start[:, np.newaxis])
    stop = np.where(after.any(axis=1), np.argmax(after, axis=1), distances.size)
    in_run = (index[np.newaxis, :] >= start[:, np.newaxis]) & (index[np.newaxis, :] < stop[:, np.newaxis])
    # the distances are read only on each ray's run through the wall, where the midline is looked for
    # (linear interpolation reads each point on its own: the same values as on the whole ray)
    coords = np.stack([rr[in_run], cc[in_run]])
    d_endo, d_epi = np.zeros(rr.shape), np.zeros(rr.shape)
    d_endo[in_run] = ndimage.map_coordinates(to_endocardium, coords, order=1, mode="nearest")
    d_epi[in_run] = ndimage.map_coordinates(to_epicardium, coords, order=1, mode="nearest")
    imbalance = np.where(in_run, np.abs(d_endo - d_epi), np.inf)
    midline = np.argmin(imbalance, axis=1)
    rays = np.arange(THICKNESS_RAYS)
    width = d_endo[rays, midline] + d_epi[rays, midline]
    return np.where(has_myo, width, np.nan)


_RAY_CACHE: OrderedDict = OrderedDict()
_RAY_CACHE_LOCK = threading.Lock()
RAY_CACHE_SIZE = 4


def wall_rays_mm(labels: np.ndarray, spacing_rc) -> list[np.ndarray | None]:
    """Per slice of a ``(slices, rows, cols)`` label map, its :func:`_slice_wall_thickness_mm` rays, or
    ``None`` where the slice has no measurable wall (too little cavity or myocardium, or no ray crosses it).

    The global wall thickness and the AHA segments read the same rays, and a moved landmark recomputes
    only the segments: the rays of the last few label maps are kept, keyed by their content.
    """
    key = (hashlib.blake2b(np.ascontiguousarray(labels).tobytes(), digest_size=16).hexdigest(), labels.shape)
    key += (float(spacing_rc[0]), float(spacing_rc[1]))
    with _RAY_CACHE_LOCK:
        if key in _RAY_CACHE:
            _RAY_CACHE.move_to_end(key)
            return _RAY_CACHE[key]
    out: list[np.ndarray | None] = []
    for k in range(labels.shape[0]):
        # papillary muscles inside the cavity are part of the cavity, not of the wall
        cavity = fill_holes(labels[k] == Label.LV_CAVITY)
        myocardium = (labels[k] == Label.LV_MYOCARDIUM) & ~cavity
        rays = None
        if cavity.sum() >= MIN_SLICE_PIXELS and myocardium.sum() >= MIN_SLICE_PIXELS:
            rays = _slice_wall_thickness_mm(cavity, myocardium, spacing_rc)
            rays.flags.writeable = False
            if not np.isfinite(rays).any():
                rays = None
        out.append(rays)
    with _RAY_CACHE_LOCK:
        _RAY_CACHE[key] = out
        while len(_RAY_CACHE) > RAY_CACHE_SIZE:
            _RAY_CACHE.popitem(last=False)
    return out


def wall_thickness_mm(ed_labels: np.ndarray, spacing_mm) -> dict:
    """Myocardial wall thickness (mm) of a ``(slices, rows, cols)`` label map, usually end-diastole.

    On every slice with an LV cavity and myocardium the wall is measured on 360 rays from the cavity
    centroid (see :func:`_slice_wall_thickness_mm`). Returns ``max_mm`` (the largest per-slice maximum,
    itself the largest median of 11 neighbouring rays, so that a pixel corner cannot set it),
    ``mean_mm`` (mean of all rays of all slices) and ``per_slice_max_mm``/``per_slice_mean_mm``
    (``None`` for slices without a measurable wall); ``max_mm``/``mean_mm`` are ``None`` when no slice
    has one.
    """
    labels = _check_labels(ed_labels, 3, "ed_labels")
    spacing = _check_spacing(spacing_mm)
    spacing_rc = (spacing[1], spacing[0])
    per_slice_max: list[float | None] = []
    per_slice_mean: list[float | None] = []
    all_rays = []
    for rays in wall_rays_mm(labels, spacing_rc):
        if rays is None:
            per_slice_max.append(None)
            per_slice_mean.append(None)
            continue
        per_slice_max.append(
            float(ndimage.median_filter(np.nan_to_num(rays), size=MAX_THICKNESS_WINDOW, mode="wrap").max())
        )
        per_slice_mean.append(float(np.nanmean(rays)))
        all_rays.append(rays[np.isfinite(rays)])
    measured = [v for v in per_slice_max if v is not None]
    return {
        "max_mm": max(measured) if measured else None,
        "mean_mm": float(np.concatenate(all_rays).mean()) if all_rays else None,
        "per_slice_max_mm": per_slice_max,
        "per_slice_mean_mm": per_slice_mean,
    }


# AHA 16-segment model (Cerqueira et al. 2002): segments of the basal and mid levels (60 degrees each) and
# of the apical level (90 degrees), as (first angle, last angle) in degrees from the middle of the septum,
# positive towards the anterior RV insertion.
AHA_BASAL_MID = ((60, 120, 1), (0, 60, 2), (-60, 0, 3), (-120, -60, 4), (-180, -120, 5), (120, 180, 6))
AHA_APICAL = ((45, 135, 13), (-45, 45, 14), (-135, -45, 15), (135, 225, 16))


def aha_key(segment: int) -> str:
    return f"WT_AHA_{segment} (mm)"


def septum_direction(labels: np.ndarray, k: int, usable: dict, spacing_rc) -> tuple[np.ndarray, float, float]:
    """How slice ``k`` of a ``(slices, rows, cols)`` ED label map is oriented for the AHA segments:
    ``(centre_rc, bisector_deg, sign)``, the LV cavity centroid (pixels), the direction of the middle of the
    septum (degrees of the ``(row, col)`` mm vector as ``atan2(d_row, d_col)``), and ``+1``/``-1`` when
    angles towards the anterior insertion increase/decrease.

    ``usable`` maps slices to their ``(anterior, inferior)`` RV insertion points ``(row, col)``; a slice
    without its own borrows the nearest slice's, relative to that slice's centroid (a direction, not a
    place). The septum is the bisector of the two insertion directions on the RV's side.
    """
    cavity = fill_holes(labels[k] == Label.LV_CAVITY)
    centre = np.argwhere(cavity).mean(axis=0)
    source = min(usable, key=lambda j: abs(j - k))
    anterior, inferior = (np.asarray(p, dtype=float) for p in usable[source])
    if source != k:
        own = fill_holes(labels[source] == Label.LV_CAVITY)
        if own.any():
            shift = centre - np.argwhere(own).mean(axis=0)
            anterior, inferior = anterior + shift, inferior + shift
    a_ant, a_inf = (
        float(np.rad2deg(np.arctan2(*((point - centre) * np.asarray(spacing_rc)))))
        for point in (anterior, inferior)
    )
    bisector = a_inf + wrap_deg(a_ant - a_inf) / 2.0
    rv = labels[k] == Label.RV_CAVITY
    if rv.any():  # the septum faces the RV: take the bisector on its side
        d = (np.argwhere(rv).mean(axis=0) - centre) * np.asarray(spacing_rc)
        if abs(wrap_deg(bisector - np.rad2deg(np.arctan2(d[0], d[1])))) > 90.0:
            bisector += 180.0
    sign = 1.0 if wrap_deg(a_ant - bisector) >= 0 else -1.0
    return centre, float(bisector), sign


def wrap_deg(angle):
    """Angles in degrees wrapped into [-180, 180)."""
    return (np.asarray(angle, dtype=float) + 180.0) % 360.0 - 180.0


def aha_wall_thickness_mm(ed_labels: np.ndarray, spacing_mm, insertions: dict) -> dict[str, float | None]:
    """Mean wall thickness (mm) of the AHA segments 1-16 of a ``(slices, rows, cols)`` label map.

    ``insertions`` maps a slice index to its ``(anterior, inferior)`` RV insertion points, each
    ``(row, col)`` in pixels. The middle of the septum is the bisector of the two insertion directions seen
    from the LV cavity centroid (on the RV's side), and the segments are counted from it, towards the
    anterior insertion for segments 1-2 and 13. Slices with a measurable wall (see
    :func:`wall_thickness_mm`) are split into basal, mid and apical thirds from the base (the end with
    the larger cavity); a slice without insertion points of its own borrows those of the nearest slice
    that has them. Thickness is measured on the same 360 rays as :func:`wall_thickness_mm`; a segment's
    value is the mean of its rays over the slices of its level, ``None`` where no ray falls in it (or
    when no slice has insertion points).
    """
    labels = _check_labels(ed_labels, 3, "ed_labels")
    spacing = _check_spacing(spacing_mm)
    spacing_rc = (spacing[1], spacing[0])
    out: dict[str, float | None] = {aha_key(s): None for s in range(1, 17)}
    usable = {int(k): v for k, v in insertions.items() if v is not None and 0 <= int(k) < labels.shape[0]}
    if not usable:
        return out
    measured = []  # (slice, rays, angles of the rays relative to the septum, cavity area)
    ray_angles = np.rad2deg(np.linspace(0.0, 2 * np.pi, THICKNESS_RAYS, endpoint=False))
    for k, rays in enumerate(wall_rays_mm(labels, spacing_rc)):
        if rays is None:
            continue
        cavity = fill_holes(labels[k] == Label.LV_CAVITY)
        _, bisector, sign = septum_direction(labels, k, usable, spacing_rc)
        relative = sign * wrap_deg(ray_angles - bisector)
        measured.append((k, rays, relative, int(cavity.sum())))
    if not measured:
        return out
    half = len(measured) // 2
    areas = [m[3] for m in measured]
    from_base = measured if sum(areas[:half]) >= sum(areas[len(measured) - half :]) else measured[::-1]
    levels = np.array_split(np.arange(len(from_base)), 3)
    for level, table in zip(levels, (AHA_BASAL_MID, AHA_BASAL_MID, AHA_APICAL), strict=True):
        if level is levels[1]:
            table = tuple((a, b, s + 6) for a, b, s in AHA_BASAL_MID)
        for first, last, segment in table:
            values = []
            for index in level:
                _, rays, relative, _ = from_base[index]
                offset = (relative - first) % 360.0
                inside = offset < last - first
                values.append(rays[inside & np.isfinite(rays)])
            values = np.concatenate(values) if values else np.zeros(0)
            out[aha_key(segment)] = round(float(values.mean()), 2) if values.size else None
    return out


def _ratio(numerator: float | None, denominator: float | None, scale: float = 1.0) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator * scale


# the unit of every index key (a display key carries it in brackets; tables show it in a column of its own)
INDEX_UNITS: dict[str, str] = {
    "ED frame": "",
    "ES frame": "",
    "LVEDV (mL)": "mL",
    "LVESV (mL)": "mL",
    "LVSV (mL)": "mL",
    "LVEF (%)": "%",
    "LVM (g)": "g",
    "RVEDV (mL)": "mL",
    "RVESV (mL)": "mL",
    "RVSV (mL)": "mL",
    "RVEF (%)": "%",
    "Height (cm)": "cm",
    "Weight (kg)": "kg",
    "BSA (m2)": "m2",
    "LVEDVi (mL/m2)": "mL/m2",
    "LVESVi (mL/m2)": "mL/m2",
    "LVSVi (mL/m2)": "mL/m2",
    "LVMi (g/m2)": "g/m2",
    "RVEDVi (mL/m2)": "mL/m2",
    "RVESVi (mL/m2)": "mL/m2",
    "RVSVi (mL/m2)": "mL/m2",
    "Max wall thickness ED (mm)": "mm",
    "Mean wall thickness ED (mm)": "mm",
    "LVM/LVEDV (g/mL)": "g/mL",
    "RVEDV/LVEDV": "",
    **{aha_key(segment): "mm" for segment in range(1, 17)},
}


def compute_indices(
    ed_labels: np.ndarray,
    es_labels: np.ndarray,
    spacing_mm,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    ed_frame: int | None = None,
    es_frame: int | None = None,
    wall: dict | None = None,
) -> dict:
    """The clinical indices of one end-diastole/end-systole pair of ``(slices, rows, cols)`` label maps.

    Returns a dict in report order: volumes (mL), stroke volumes, ejection fractions (%), LV mass (g,
    myocardial volume at ED x 1.05 g/mL), BSA (m2, DuBois) and BSA-indexed values, wall thickness at ED
    (mm) and two ratios. Values are floats rounded to 2 decimals (3 for the unitless RVEDV/LVEDV), or
    ``None`` where unknown: indexed values without height and weight, ejection fractions of an empty
    ventricle. ``ed_frame``/``es_frame`` are only reported (frame numbers as the user knows them).
    ``wall`` is :func:`wall_thickness_mm` of ``ed_labels`` when the caller has already measured it.
    """
    ed_labels = _check_labels(ed_labels, 3, "ed_labels")
    es_labels = _check_labels(es_labels, 3, "es_labels")
    if ed_labels.shape != es_labels.shape:
        raise CardiacInputError(
            "ED and ES label maps must have the same shape, got "
            f"ED {ed_labels.shape} and ES {es_labels.shape}"
        )
    ed, es = label_volumes_ml(ed_labels, spacing_mm), label_volumes_ml(es_labels, spacing_mm)
    bsa = bsa_dubois(height_cm, weight_kg) if height_cm is not None and weight_kg is not None else None
    lv_sv, rv_sv = ed["LV"] - es["LV"], ed["RV"] - es["RV"]
    lvm = ed["Myo"] * MYOCARDIAL_DENSITY_G_PER_ML
    wall = wall if wall is not None else wall_thickness_mm(ed_labels, spacing_mm)
    values = {
        "LVEDV (mL)": ed["LV"],
        "LVESV (mL)": es["LV"],
        "LVSV (mL)": lv_sv,
        "LVEF (%)": _ratio(lv_sv, ed["LV"], 100.0),
        "LVM (g)": lvm,
        "RVEDV (mL)": ed["RV"],
        "RVESV (mL)": es["RV"],
        "RVSV (mL)": rv_sv,
        "RVEF (%)": _ratio(rv_sv, ed["RV"], 100.0),
        "Height (cm)": height_cm,
        "Weight (kg)": weight_kg,
        "BSA (m2)": bsa,
        "LVEDVi (mL/m2)": _ratio(ed["LV"], bsa),
        "LVESVi (mL/m2)": _ratio(es["LV"], bsa),
        "LVSVi (mL/m2)": _ratio(lv_sv, bsa),
        "LVMi (g/m2)": _ratio(lvm, bsa),
        "RVEDVi (mL/m2)": _ratio(ed["RV"], bsa),
        "RVESVi (mL/m2)": _ratio(es["RV"], bsa),
        "RVSVi (mL/m2)": _ratio(rv_sv, bsa),
        "Max wall thickness ED (mm)": wall["max_mm"],
        "Mean wall thickness ED (mm)": wall["mean_mm"],
        "LVM/LVEDV (g/mL)": _ratio(lvm, ed["LV"]),
        "RVEDV/LVEDV": _ratio(ed["RV"], ed["LV"]),
    }
    indices: dict = {
        "ED frame": None if ed_frame is None else int(ed_frame),
        "ES frame": None if es_frame is None else int(es_frame),
    }
    for key, value in values.items():
        indices[key] = None if value is None else round(float(value), 3 if key == "RVEDV/LVEDV" else 2)
    return indices
