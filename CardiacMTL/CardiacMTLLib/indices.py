"""Clinical indices from label maps: volumes, ejection fractions, mass, wall thickness, BSA, ED/ES choice.

Volumes are voxel counts times the voxel volume (the convention of the ACDC challenge and of most
clinical software working on short-axis stacks: each slice's area times the slice spacing). Labels:
0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity. Arrays are ``(slices, rows, cols)`` and
``spacing_mm`` is ``(col, row, slice)`` as in :class:`~CardiacMTLLib.cine.Cine`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import CardiacInputError

RV, MYO, LV = 1, 2, 3
MYOCARDIAL_DENSITY_G_PER_ML = 1.05


def label_volumes_ml(labels: np.ndarray, spacing_mm) -> dict[str, float]:
    """LV cavity, RV cavity and myocardium volumes in mL (voxel count x voxel volume)."""
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    counts = np.bincount(np.asarray(labels, dtype=np.int64).ravel(), minlength=4)
    return {"LV": counts[LV] * voxel_ml, "RV": counts[RV] * voxel_ml, "Myo": counts[MYO] * voxel_ml}


def volume_curve_ml(labels_4d: np.ndarray, spacing_mm) -> dict[str, np.ndarray]:
    """Per-frame volumes of a ``(frames, slices, rows, cols)`` label series."""
    volumes = [label_volumes_ml(frame, spacing_mm) for frame in labels_4d]
    return {key: np.array([v[key] for v in volumes]) for key in ("LV", "RV", "Myo")}


def bsa_dubois(height_cm: float, weight_kg: float) -> float:
    """Body surface area in m2 (DuBois & DuBois 1916): 0.007184 x W^0.425 x H^0.725."""
    if not (height_cm > 0 and weight_kg > 0):
        raise CardiacInputError(f"height and weight must be positive, got {height_cm} cm, {weight_kg} kg")
    return 0.007184 * weight_kg**0.425 * height_cm**0.725


def select_end_diastole_systole(lv_volumes_ml) -> tuple[int, int]:
    """ED = the frame with the largest LV cavity, ES = the smallest."""
    volumes = np.asarray(lv_volumes_ml, dtype=float)
    if volumes.size == 0:
        raise CardiacInputError("no frames to choose end-diastole and end-systole from")
    return int(np.argmax(volumes)), int(np.argmin(volumes))


def _slice_thickness_profile(cavity: np.ndarray, myo: np.ndarray, spacing_rc, n_rays: int = 180):
    """Wall thickness (mm) along rays from the cavity centroid: the length of myocardium each ray crosses.

    Rays sample the myocardium mask with a quarter-pixel step; the thickness along a ray is the extent of
    the first run of myocardium after leaving the cavity (so papillary islands or the RV wall beyond do
    not count). Measured in mm with the anisotropic in-plane spacing.
    """
    rr, cc = np.nonzero(cavity)
    if rr.size == 0 or not myo.any():
        return np.array([])
    r0, c0 = rr.mean(), cc.mean()
    sr, sc = spacing_rc
    step_mm = 0.25 * min(sr, sc)
    max_mm = 2.0 * max(myo.shape[0] * sr, myo.shape[1] * sc)
    distances = np.arange(0, max_mm, step_mm)
    angles = np.linspace(0, 2 * np.pi, n_rays, endpoint=False)
    rows = r0 + np.outer(np.sin(angles), distances) / sr
    cols = c0 + np.outer(np.cos(angles), distances) / sc
    inside = (rows >= 0) & (rows <= myo.shape[0] - 1) & (cols >= 0) & (cols <= myo.shape[1] - 1)
    on_myo = np.zeros_like(inside)
    on_myo[inside] = myo[np.round(rows[inside]).astype(int), np.round(cols[inside]).astype(int)]
    thickness = []
    for ray in on_myo:
        hits = np.flatnonzero(ray)
        if hits.size == 0:
            continue
        start = hits[0]
        gaps = np.flatnonzero(np.diff(hits) > 1)
        stop = hits[gaps[0]] if gaps.size else hits[-1]
        thickness.append((stop - start + 1) * step_mm)
    return np.array(thickness)


def wall_thickness_mm(ed_labels: np.ndarray, spacing_mm) -> dict:
    """Maximal and mean myocardial wall thickness (mm) of a label map, with per-slice values."""
    spacing_rc = (float(spacing_mm[1]), float(spacing_mm[0]))
    per_slice_max, per_slice_mean, all_rays = [], [], []
    for k in range(ed_labels.shape[0]):
        cavity, myo = ed_labels[k] == LV, ed_labels[k] == MYO
        if cavity.sum() < 5 or myo.sum() < 5:
            per_slice_max.append(None)
            per_slice_mean.append(None)
            continue
        profile = _slice_thickness_profile(ndimage.binary_fill_holes(cavity), myo, spacing_rc)
        if profile.size == 0:
            per_slice_max.append(None)
            per_slice_mean.append(None)
            continue
        # the 95th percentile of the rays, so a single oblique ray through a trabecula is not "the max"
        per_slice_max.append(float(np.percentile(profile, 95)))
        per_slice_mean.append(float(profile.mean()))
        all_rays.append(profile)
    valid = [v for v in per_slice_max if v is not None]
    return {
        "max_mm": max(valid) if valid else None,
        "mean_mm": float(np.concatenate(all_rays).mean()) if all_rays else None,
        "per_slice_max_mm": per_slice_max,
        "per_slice_mean_mm": per_slice_mean,
    }


def _ratio(numerator, denominator, scale=1.0):
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator * scale


def _round(value, digits=2):
    return None if value is None else round(float(value), digits)


def compute_indices(
    ed_labels: np.ndarray,
    es_labels: np.ndarray,
    spacing_mm,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    ed_frame: int | None = None,
    es_frame: int | None = None,
) -> dict:
    """The clinical indices of one ED/ES pair, as an ordered dict of floats (``None`` where unknown)."""
    ed_labels, es_labels = np.asarray(ed_labels), np.asarray(es_labels)
    if ed_labels.shape != es_labels.shape:
        raise CardiacInputError(
            f"ED and ES label maps must have the same shape, got {ed_labels.shape} and {es_labels.shape}"
        )
    ed, es = label_volumes_ml(ed_labels, spacing_mm), label_volumes_ml(es_labels, spacing_mm)
    bsa = bsa_dubois(height_cm, weight_kg) if height_cm and weight_kg else None
    lv_sv, rv_sv = ed["LV"] - es["LV"], ed["RV"] - es["RV"]
    lvm = ed["Myo"] * MYOCARDIAL_DENSITY_G_PER_ML
    wall = wall_thickness_mm(ed_labels, spacing_mm)
    indices = {
        "ED frame": ed_frame,
        "ES frame": es_frame,
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
    return {
        key: (
            value
            if key in ("ED frame", "ES frame") or value is None
            else _round(value, 3 if "/" in key and "(" not in key else 2)
        )
        for key, value in indices.items()
    }
