"""A synthetic short-axis cine whose ground truth is known exactly: labels, volumes, EF, landmarks.

The heart is a truncated prolate ellipsoid LV (cavity and myocardium, myocardial volume conserved while
the wall thickens in systole) with an RV crescent on the septum, both contracting over a smooth cycle
(ED at frame 0, ES at ~37 % of the cycle). Around it sit the tissues of a bright-blood (SSFP) image: body,
subcutaneous and pericardial fat, lungs, spine and descending aorta, liver near the apex; then partial
volume blur and Rician noise. Orientation follows ACDC arrays (rows down, columns right): the RV lies at
smaller column indices, anterior is up. Optional per-slice in-plane shifts mimic breath-hold
misregistration. Volumes are voxel counts of the label maps, so they are exact by construction; this is
the demo's default case and a source of test cases with known answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from .cine import Cine
from .indices import volume_curve_ml

INTENSITY = {
    "air": 0.02,
    "body": 0.42,
    "fat": 0.85,
    "lung": 0.06,
    "blood": 1.0,
    "myocardium": 0.28,
    "liver": 0.36,
    "spine": 0.22,
}


@dataclass
class SyntheticCase:
    """A generated cine with its exact ground truth (volumes in mL per frame, indices on the time axis)."""

    cine: Cine
    labels: np.ndarray
    lv_volume_ml: np.ndarray
    rv_volume_ml: np.ndarray
    myo_volume_ml: np.ndarray
    ed_index: int
    es_index: int
    rv_insertion_points: list[dict] = field(default_factory=list)
    slice_shifts_mm: np.ndarray | None = None

    @property
    def lv_ejection_fraction(self) -> float:
        ed, es = self.lv_volume_ml[self.ed_index], self.lv_volume_ml[self.es_index]
        return float(100.0 * (ed - es) / ed)


def contraction(phase: np.ndarray | float, es_phase: float = 0.375) -> np.ndarray:
    """0 at end-diastole, 1 at end-systole, smooth and periodic over ``phase`` in [0, 1)."""
    phase = np.asarray(phase, dtype=float) % 1.0
    systole = 0.5 * (1 - np.cos(np.pi * phase / es_phase))
    diastole = 0.5 * (1 + np.cos(np.pi * (phase - es_phase) / (1 - es_phase)))
    return np.where(phase <= es_phase, systole, diastole)


def _ellipse(rr, cc, center, semi_rc):
    return ((rr - center[0]) / semi_rc[0]) ** 2 + ((cc - center[1]) / semi_rc[1]) ** 2 <= 1.0


def _background(rr_mm, cc_mm, center_mm, slice_fraction, rng_phase):
    """Static anatomy of one slice (intensity image), coordinates in mm from the image origin."""
    body_c = center_mm
    image = np.full(rr_mm.shape, INTENSITY["air"])
    body = _ellipse(rr_mm, cc_mm, body_c, (92, 135))
    inner = _ellipse(rr_mm, cc_mm, body_c, (82, 125))
    image[body] = INTENSITY["fat"]
    image[inner] = INTENSITY["body"]
    for side in (-1, 1):  # lungs either side of the heart, posterior-lateral
        lung = _ellipse(rr_mm, cc_mm, (body_c[0] + 8, body_c[1] + side * 68), (60, 42))
        image[lung & inner] = INTENSITY["lung"]
    spine = _ellipse(rr_mm, cc_mm, (body_c[0] + 66, body_c[1] + 8), (14, 14))
    image[spine] = INTENSITY["spine"]
    aorta = _ellipse(rr_mm, cc_mm, (body_c[0] + 50, body_c[1] + 30), (11, 11))
    image[aorta] = INTENSITY["blood"]
    if slice_fraction > 0.6:  # liver comes in below the apex, on the patient's right (image left)
        liver = _ellipse(rr_mm, cc_mm, (body_c[0] + 20, body_c[1] - 55), (55 * slice_fraction, 70))
        image[liver & inner & ~spine] = INTENSITY["liver"]
    return image


def generate_synthetic_cine(
    seed: int = 0,
    num_frames: int = 20,
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 8.0),
    shape: tuple[int, int, int] = (192, 192, 12),
    noise_std: float = 0.035,
    breath_hold_shift_mm: float = 0.0,
    height_cm: float = 175.0,
    weight_kg: float = 75.0,
    ejection_fraction: float = 0.6,
    lv_radius_mm: float = 27.0,
    wall_thickness_mm: float = 9.0,
    es_phase: float = 0.375,
    rr_interval_ms: float = 900.0,
) -> SyntheticCase:
    """Generate a synthetic short-axis cine; ``shape`` is ``(rows, cols, slices)``, spacing ``(col, row, slice)``.

    The seed varies the heart's position, size and orientation slightly, the noise and the breath-hold
    shifts. ``ejection_fraction`` is the target LV EF (the exact value is measured from the labels).
    """
    rng = np.random.default_rng(seed)
    rows, cols, slices = shape
    sx, sy, sz = (float(s) for s in spacing_mm)
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    rr_mm, cc_mm = (rr + 0.5) * sy, (cc + 0.5) * sx
    fov_center = (rows * sy / 2.0, cols * sx / 2.0)
    heart_center = (
        fov_center[0] - 10 + rng.uniform(-6, 6),
        fov_center[1] + 8 + rng.uniform(-6, 6),
    )
    radius = lv_radius_mm * rng.uniform(0.92, 1.08)
    rv_angle = np.deg2rad(rng.uniform(-8, 8))
    length_ed = (slices - 1.5) * sz  # cavity apex near the last slice
    length_es = 0.88 * length_ed
    # in-plane cavity scale at ES from the target EF (half-ellipsoid volume ~ a^2 l)
    radius_es_scale = np.sqrt((1 - ejection_fraction) * length_ed / length_es)
    myo_volume = (
        (2 / 3)
        * np.pi
        * ((radius + wall_thickness_mm) ** 2 * (length_ed + wall_thickness_mm) - radius**2 * length_ed)
    )
    shifts = np.zeros((slices, 2))
    if breath_hold_shift_mm > 0:
        angles = rng.uniform(0, 2 * np.pi, slices)
        magnitudes = rng.uniform(0.3, 1.0, slices) * breath_hold_shift_mm
        shifts = np.stack([magnitudes * np.sin(angles), magnitudes * np.cos(angles)], axis=1)
    phases = np.arange(num_frames) / num_frames
    squeeze = contraction(phases, es_phase)

    images = np.zeros((num_frames, slices, rows, cols), dtype=np.float32)
    labels = np.zeros((num_frames, slices, rows, cols), dtype=np.uint8)
    backgrounds = [_background(rr_mm, cc_mm, fov_center, (k + 0.5) / slices, rng) for k in range(slices)]
    for t in range(num_frames):
        c = squeeze[t]
        a_cav = radius * (1 - c * (1 - radius_es_scale))
        l_cav = length_ed - c * (length_ed - length_es)
        l_epi = l_cav + wall_thickness_mm * (1 + 0.3 * c)
        a_epi = np.sqrt((myo_volume * 3 / (2 * np.pi) + a_cav**2 * l_cav) / l_epi)
        rv_scale = 1 - 0.32 * c
        for k in range(slices):
            z = (k + 0.5) * sz  # depth below the base plane
            center = (heart_center[0] + shifts[k, 0], heart_center[1] + shifts[k, 1])
            d_r, d_c = rr_mm - center[0], cc_mm - center[1]
            rho2 = d_r**2 + d_c**2
            cav_r2 = a_cav**2 * max(0.0, 1 - (z / l_cav) ** 2)
            epi_r2 = a_epi**2 * max(0.0, 1 - (z / l_epi) ** 2)
            cavity = rho2 <= cav_r2
            epi = rho2 <= epi_r2
            # RV: an ellipse beside the septum, tapering towards the apex, minus the LV (so a crescent)
            rv_taper = max(0.0, 1 - (z / (0.85 * length_ed)) ** 2)
            rv_cavity = np.zeros_like(cavity)
            rv_wall = np.zeros_like(cavity)
            if rv_taper > 0.05:
                offset = 0.6 * a_epi * rv_scale**0.3
                rv_c = (center[0] - 0.3 * offset, center[1] - offset)
                semi = (
                    radius * 1.9 * np.sqrt(rv_taper) * rv_scale**0.5,
                    radius * 1.45 * np.sqrt(rv_taper) * rv_scale,
                )
                # rotate the RV a little around the LV
                rr_rot = (rr_mm - rv_c[0]) * np.cos(rv_angle) - (cc_mm - rv_c[1]) * np.sin(rv_angle)
                cc_rot = (rr_mm - rv_c[0]) * np.sin(rv_angle) + (cc_mm - rv_c[1]) * np.cos(rv_angle)
                inside = (rr_rot / semi[0]) ** 2 + (cc_rot / semi[1]) ** 2 <= 1.0
                wall3 = (rr_rot / (semi[0] + 3)) ** 2 + (cc_rot / (semi[1] + 3)) ** 2 <= 1.0
                septum = rho2 <= (np.sqrt(epi_r2) + 0.5) ** 2
                rv_cavity = inside & ~septum
                rv_wall = wall3 & ~inside & ~septum
            heart = epi | rv_cavity | rv_wall
            fat = ndimage.binary_dilation(heart, iterations=2) & ~heart
            image = backgrounds[k].copy()
            image[fat] = 0.6 * INTENSITY["fat"] + 0.4 * image[fat]
            image[rv_wall] = INTENSITY["myocardium"]
            image[epi] = INTENSITY["myocardium"]
            image[cavity] = INTENSITY["blood"]
            image[rv_cavity] = INTENSITY["blood"]
            # a few papillary muscles inside the cavity (dark dots): image only, labelled LV cavity like ACDC
            if cav_r2 > 64:
                for angle in (np.deg2rad(100), np.deg2rad(200)):
                    p = (
                        center[0] + 0.55 * np.sqrt(cav_r2) * np.sin(angle),
                        center[1] + 0.55 * np.sqrt(cav_r2) * np.cos(angle),
                    )
                    image[(rr_mm - p[0]) ** 2 + (cc_mm - p[1]) ** 2 <= 9] = 0.4
            label = np.zeros((rows, cols), dtype=np.uint8)
            label[epi] = 2
            label[cavity] = 3
            label[rv_cavity] = 1
            images[t, k] = image
            labels[t, k] = label
    # partial-volume blur in plane, then Rician noise (magnitude of a complex Gaussian signal)
    images = ndimage.gaussian_filter(images, sigma=(0, 0, 0.9, 0.9))
    noise = rng.normal(0, noise_std, (2,) + images.shape)
    images = np.sqrt((images + noise[0]) ** 2 + noise[1] ** 2) * 1000.0
    affine = np.diag([sx, sy, sz, 1.0])
    affine[:3, 3] = (-cols * sx / 2, -rows * sy / 2, 0.0)
    cine = Cine(
        data=images.astype(np.float32),
        spacing_mm=(sx, sy, sz),
        affine=affine,
        frame_numbers=list(range(num_frames)),
        source=f"synthetic cine (seed {seed})",
        trigger_times_ms=[float(p * rr_interval_ms) for p in phases],
        height_cm=height_cm,
        weight_kg=weight_kg,
        image_stems=["synthetic_cine"],
    )
    curve = volume_curve_ml(labels, cine.spacing_mm)
    return SyntheticCase(
        cine=cine,
        labels=labels,
        lv_volume_ml=curve["LV"],
        rv_volume_ml=curve["RV"],
        myo_volume_ml=curve["Myo"],
        ed_index=int(np.argmax(curve["LV"])),
        es_index=int(np.argmin(curve["LV"])),
        rv_insertion_points=rv_insertion_points_from_labels(labels, affine),
        slice_shifts_mm=shifts,
    )


def rv_insertion_points_from_labels(labels: np.ndarray, affine: np.ndarray) -> list[dict]:
    """The two ends of the septal stretch where the RV cavity touches the LV epicardium, per frame and slice.

    Returns dicts ``{"frame", "slice", "label", "ijk", "ras"}``; ``label`` is ``RV_INSERT_ANTERIOR`` (the
    end with the smaller row, i.e. up in the image) or ``RV_INSERT_INFERIOR``.
    """
    points = []
    for t in range(labels.shape[0]):
        for k in range(labels.shape[1]):
            lab = labels[t, k]
            lv = (lab == 2) | (lab == 3)
            rv = lab == 1
            if not lv.any() or not rv.any():
                continue
            contact = lv & ~ndimage.binary_erosion(lv) & ndimage.binary_dilation(rv, iterations=2)
            if contact.sum() < 2:
                continue
            r0, c0 = np.argwhere(lab == 3).mean(axis=0) if (lab == 3).any() else np.argwhere(lv).mean(axis=0)
            pr, pc = np.nonzero(contact)
            angle = np.arctan2(pr - r0, pc - c0)
            # the contact arc faces the RV (angle ~ pi): unwrap around pi so its ends are the extremes
            angle = np.mod(angle, 2 * np.pi)
            ends = [int(np.argmin(angle)), int(np.argmax(angle))]
            ends.sort(key=lambda i: pr[i])
            for name, idx in zip(("RV_INSERT_ANTERIOR", "RV_INSERT_INFERIOR"), ends, strict=True):
                ijk = [float(pc[idx]), float(pr[idx]), float(k)]
                ras = (affine @ np.array(ijk + [1.0]))[:3]
                points.append(
                    {"frame": t, "slice": k, "label": name, "ijk": ijk, "ras": [float(v) for v in ras]}
                )
    return points


def write_synthetic_case(case: SyntheticCase, folder: str | Path) -> Path:
    """Write ``synthetic_cine.nii.gz`` (4D), ``synthetic_cine_gt.nii.gz`` and ``ground_truth.json``."""
    from .cine import write_cine_nifti, write_label_map

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_cine_nifti(case.cine, folder / "synthetic_cine.nii.gz")
    write_label_map(
        case.labels, case.cine.affine, folder / "synthetic_cine_gt.nii.gz", spacing_mm=case.cine.spacing_mm
    )
    truth = {
        "spacing_mm": list(case.cine.spacing_mm),
        "height_cm": case.cine.height_cm,
        "weight_kg": case.cine.weight_kg,
        "ed_index": case.ed_index,
        "es_index": case.es_index,
        "lv_ejection_fraction_percent": round(case.lv_ejection_fraction, 3),
        "lv_volume_ml": [round(float(v), 4) for v in case.lv_volume_ml],
        "rv_volume_ml": [round(float(v), 4) for v in case.rv_volume_ml],
        "myo_volume_ml": [round(float(v), 4) for v in case.myo_volume_ml],
        "slice_shifts_mm": np.round(case.slice_shifts_mm, 3).tolist()
        if case.slice_shifts_mm is not None
        else None,
        "labels": {"0": "background", "1": "RV cavity", "2": "LV myocardium", "3": "LV cavity"},
    }
    (folder / "ground_truth.json").write_text(json.dumps(truth, indent=2))
    return folder
