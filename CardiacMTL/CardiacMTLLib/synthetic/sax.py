"""A synthetic short-axis cine whose ground truth is known exactly: labels, volumes, EF, RV insertions.

The LV is a truncated prolate ellipsoid (base at the first slice, apex near the last) whose cavity
contracts over a smooth periodic cycle (end-diastole at frame 0, end-systole at ~37 % of the cycle) while
the wall thickens so that the myocardial volume stays nearly constant; the RV is a crescent on the septum
with a thin unlabelled free wall, over the basal ~3/4 of the slices. Around the heart sit the tissues of
a bright-blood SSFP image laid out as in ACDC arrays (rows down, columns right: RV left of and slightly
below the LV, lung above and lateral, liver below): epicardial fat and pericardium, lungs with vessels,
chest wall muscle under bright subcutaneous fat, liver and bowel, aorta and spine, then a coil bias field,
partial-volume blur and Rician noise. Optional per-slice in-plane shifts mimic breath-hold
misregistration. Volumes are voxel counts of the label maps, so the ground truth is exact by
construction; this is the demo's case and the source of test cases with known answers.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.indices import volume_curve_ml
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.nifti import write_cine_nifti, write_label_map
from CardiacMTLLib.synthetic.anatomy import (
    PERICARDIUM_MM,
    RV_DIRECTION_DEG,
    SIGNAL_SCALE,
    Heart,
    SliceGrid,
    Surroundings,
    contraction,
    draw_background,
    harmonics,
    insertion_angles,
    modulation,
    smooth_noise,
)
from CardiacMTLLib.types import Cine, label_names_document


@dataclass
class SyntheticCase:
    """A generated cine with its exact ground truth.

    ``labels`` is ``(frames, slices, rows, cols)`` uint8 (0 background, 1 RV cavity, 2 LV myocardium,
    3 LV cavity); ``*_volume_ml`` are per-frame voxel-count volumes of those labels; ``ed_index`` and
    ``es_index`` are positions on the time axis. ``rv_insertion_points`` has one dict per frame, slice and
    insertion (``frame``, ``slice``, ``label`` ``RV_INSERT_ANTERIOR``/``RV_INSERT_INFERIOR``, ``ijk``
    voxel coordinates, ``ras`` world mm), where the RV cavity meets the LV epicardium.
    ``slice_shifts_mm`` is ``(slices, 2)``, the (row, col) breath-hold shift applied to each slice's heart.
    """

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
        """LV ejection fraction in % from the label volumes at the true ED and ES."""
        ed, es = self.lv_volume_ml[self.ed_index], self.lv_volume_ml[self.es_index]
        return float(100.0 * (ed - es) / ed)

    @property
    def rv_ejection_fraction(self) -> float:
        """RV ejection fraction in % from the label volumes at the true ED and ES."""
        ed, es = self.rv_volume_ml[self.ed_index], self.rv_volume_ml[self.es_index]
        return float(100.0 * (ed - es) / ed)


def generate_synthetic_cine(
    seed: int = 0,
    num_frames: int = 20,
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 8.0),
    shape: tuple[int, int, int] = (192, 192, 10),
    noise_std: float = 0.03,
    breath_hold_shift_mm: float = 0.0,
    height_cm: float = 175.0,
    weight_kg: float = 75.0,
    ejection_fraction: float = 0.6,
    lv_radius_mm: float = 28.0,
    wall_thickness_mm: float = 9.0,
    es_fraction: float = 0.375,
    rr_interval_ms: float = 900.0,
    subslices: int = 3,
) -> SyntheticCase:
    """Generate a synthetic short-axis SSFP cine with exact labels.

    ``shape`` is ``(rows, cols, slices)``, ``spacing_mm`` ``(col, row, slice)`` as in :class:`Cine`; the
    stack covers the LV as a planned short-axis stack does (base in the first slice, apex in the last),
    so the LV's length follows the number of slices times their spacing.
    ``noise_std`` is the Rician noise level relative to the LV blood signal, ``breath_hold_shift_mm`` the
    largest in-plane shift of a slice's heart (0: none). ``ejection_fraction`` (0..1) is the target LV EF;
    the exact one is that of the labels (``case.lv_ejection_fraction``). ``lv_radius_mm`` and
    ``wall_thickness_mm`` are the basal cavity radius and wall at ED; the seed varies them by a few %,
    and the heart's position, the RV, the surroundings, the noise and the shifts. ``es_fraction`` places
    end-systole in the cycle; ``subslices`` renders each slice at that many depths and averages the images
    (through-plane partial volume; labels are those of the slice centre).
    """
    rows, cols, num_slices = (int(n) for n in shape)
    if min(rows, cols) < 32 or num_slices < 2:
        raise CardiacInputError(f"shape must be (rows >= 32, cols >= 32, slices >= 2), got {shape}")
    if num_frames < 2:
        raise CardiacInputError(f"num_frames must be at least 2, got {num_frames}")
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise CardiacInputError(f"spacing_mm must be three positive numbers (mm), got {spacing_mm}")
    if not 0.05 <= ejection_fraction <= 0.85:
        raise CardiacInputError(f"ejection_fraction must be between 0.05 and 0.85, got {ejection_fraction}")
    if subslices < 1 or subslices % 2 == 0:
        raise CardiacInputError(
            f"subslices must be a positive odd number (one at the slice centre), got {subslices}"
        )
    if breath_hold_shift_mm < 0 or noise_std < 0:
        raise CardiacInputError(
            f"breath_hold_shift_mm and noise_std must not be negative, got {breath_hold_shift_mm}, {noise_std}"
        )
    sx, sy, sz = spacing
    rng = np.random.default_rng(seed)

    # ---- the heart, in mm; x runs along the columns, y along the rows, both from the FOV centre
    es_index = int(np.clip(round(es_fraction * num_frames), 1, num_frames - 1))
    es_phase = es_index / num_frames
    a_ed = lv_radius_mm * rng.uniform(0.94, 1.06)
    wall = wall_thickness_mm * rng.uniform(0.92, 1.08)
    l_ed = (num_slices - 1.2) * sz  # the cavity apex falls within the last slice
    l_es = 0.88 * l_ed
    apex_wall = 0.9 * wall
    # half-ellipsoid volume ~ a^2 l, so this ES radius gives the target EF
    a_es = a_ed * np.sqrt((1 - ejection_fraction) * l_ed / l_es)
    heart = Heart(
        cavity_radius_ed=a_ed,
        cavity_length_ed=l_ed,
        cavity_radius_es=float(a_es),
        cavity_length_es=l_es,
        apex_wall_ed=apex_wall,
        myocardial_constant=(a_ed + wall) ** 2 * (l_ed + apex_wall) - a_ed**2 * l_ed,
        rv_angle=float(np.deg2rad(RV_DIRECTION_DEG + rng.uniform(-10, 10))),
        rv_reach=25.0 * rng.uniform(0.9, 1.1),
        rv_wrap=float(np.deg2rad(80.0 + rng.uniform(-6, 6))),
        rv_length=0.88 * l_ed,
        endo_harmonics=harmonics(rng, 0.02),
        epi_harmonics=harmonics(rng, 0.02),
    )
    lv_xy = np.array([10.0 + rng.uniform(-5, 5), -4.0 + rng.uniform(-5, 5)])
    around = Surroundings.draw(rng)
    shifts_rc = np.zeros((num_slices, 2))
    if breath_hold_shift_mm > 0:
        angles = rng.uniform(0, 2 * np.pi, num_slices)
        magnitudes = breath_hold_shift_mm * np.sqrt(rng.uniform(0, 1, num_slices))
        shifts_rc = np.stack([magnitudes * np.sin(angles), magnitudes * np.cos(angles)], axis=1)

    y_full = ((np.arange(rows) + 0.5) * sy - rows * sy / 2)[:, np.newaxis] * np.ones((1, cols))
    x_full = ((np.arange(cols) + 0.5) * sx - cols * sx / 2)[np.newaxis, :] * np.ones((rows, 1))
    phases = np.arange(num_frames) / num_frames
    squeeze = contraction(phases, es_phase)
    bias = 0.9 + 0.25 * (np.hypot(x_full, y_full) / 150.0) ** 2 + 0.06 * smooth_noise(rng, (rows, cols), 25)

    images = np.zeros((num_frames, num_slices, rows, cols), dtype=np.float32)
    labels = np.zeros((num_frames, num_slices, rows, cols), dtype=np.uint8)
    offsets = (np.arange(subslices) - subslices // 2) * sz / subslices
    insertions = {}
    for k in range(num_slices):
        z_mid = (k + 0.5) * sz
        grid = SliceGrid.make(heart, lv_xy + shifts_rc[k, ::-1], x_full, y_full, (sx, sy), z_mid / l_ed, rng)
        # the space the heart moves in (its ED extent at the slice's most basal depth, with fat and a
        # margin) is kept free of the abdominal organs
        d_ed, _ = grid.distance_to_heart_mm(heart, max(z_mid + offsets[0], 0.0), 0.0)
        envelope = np.zeros((rows, cols), dtype=bool)
        envelope[grid.box] = d_ed <= grid.fat_mm + PERICARDIUM_MM + 3.0
        background = draw_background(x_full, y_full, k, num_slices, lv_xy, envelope, around, rng)
        for t in range(num_frames):
            c = float(squeeze[t])
            renders = [grid.render(heart, max(z_mid + dz, 0.0), c, background[grid.box]) for dz in offsets]
            slice_image = background.copy()
            slice_image[grid.box] = np.mean([image for image, *_ in renders], axis=0)
            images[t, k] = slice_image * bias
            _, label, rv, r_epi = renders[subslices // 2]  # labels are those of the slice centre
            labels[t, k][grid.box] = label
            if rv is not None and (label == 1).any() and (label == 2).any():
                ends = insertion_angles(heart, z_mid, c, rv)
                if ends is not None:
                    insertions[(t, k)] = (grid.centre_xy, r_epi, ends)

    # in-plane partial-volume blur, then Rician noise (the magnitude of a complex Gaussian signal)
    images = ndimage.gaussian_filter(images, sigma=(0, 0, 0.9, 0.9))
    real = images + noise_std * rng.standard_normal(images.shape, dtype=np.float32)
    imaginary = noise_std * rng.standard_normal(images.shape, dtype=np.float32)
    images = np.rint(np.hypot(real, imaginary) * SIGNAL_SCALE).astype(np.float32)

    affine = np.diag([sx, sy, sz, 1.0])
    affine[:3, 3] = (-(cols - 1) * sx / 2, -(rows - 1) * sy / 2, -(num_slices - 1) * sz / 2)
    cine = Cine(
        data=images,
        spacing_mm=(sx, sy, sz),
        affine=affine,
        frame_numbers=list(range(num_frames)),
        source=f"synthetic cine (seed {seed})",
        trigger_times_ms=[round(float(p * rr_interval_ms), 3) for p in phases],
        height_cm=height_cm,
        weight_kg=weight_kg,
        image_stems=["synthetic_cine"],
    )
    points = []
    for (t, k), (centre, r_epi, ends) in sorted(insertions.items()):
        found = []
        for angle in ends:
            radius = r_epi * float(modulation(np.array(angle), heart.epi_harmonics))
            x, y = centre + radius * np.array([np.cos(angle), np.sin(angle)])
            ijk = [(x + cols * sx / 2) / sx - 0.5, (y + rows * sy / 2) / sy - 0.5, float(k)]
            found.append(ijk)
        found.sort(key=lambda ijk: ijk[1])  # the anterior insertion is up in the image
        for name, ijk in zip(("RV_INSERT_ANTERIOR", "RV_INSERT_INFERIOR"), found, strict=True):
            ras = affine @ np.array(ijk + [1.0])
            points.append(
                {
                    "frame": t,
                    "slice": k,
                    "label": name,
                    "ijk": [round(float(v), 4) for v in ijk],
                    "ras": [round(float(v), 4) for v in ras[:3]],
                }
            )
    curve = volume_curve_ml(labels, cine.spacing_mm)
    return SyntheticCase(
        cine=cine,
        labels=labels,
        lv_volume_ml=curve["LV"],
        rv_volume_ml=curve["RV"],
        myo_volume_ml=curve["Myo"],
        ed_index=0,
        es_index=es_index,
        rv_insertion_points=points,
        slice_shifts_mm=shifts_rc,
    )


def write_acdc_like_patients(root: str | Path, groups=("DCM", "NOR", "DCM", "NOR"), info: str = "") -> Path:
    """ACDC-like patient folders ``patient001`` ... under ``root``, one per group: small generated hearts
    (64 x 64 x 4 voxels of 2.5 x 2.5 x 10 mm) as an ED and an ES frame file with their label maps and an
    ``Info.cfg`` (ED, ES, Group, and ``info``'s lines), for the trainers' tests."""
    import nibabel as nib

    root = Path(root)
    for n, group in enumerate(groups, start=1):
        case = generate_synthetic_cine(
            seed=n, num_frames=4, spacing_mm=(2.5, 2.5, 10.0), shape=(64, 64, 4), subslices=1
        )
        folder = root / f"patient{n:03d}"
        folder.mkdir(parents=True)
        ed, es = case.ed_index + 1, case.es_index + 1
        (folder / "Info.cfg").write_text(f"ED: {ed}\nES: {es}\nGroup: {group}\n{info}")
        for frame in (ed, es):
            stem = folder / f"patient{n:03d}_frame{frame:02d}"
            image = np.ascontiguousarray(case.cine.data[frame - 1].transpose(2, 1, 0))
            nifti = nib.Nifti1Image(image, case.cine.affine)
            nifti.header.set_zooms(case.cine.spacing_mm)
            nib.save(nifti, f"{stem}.nii.gz")
            write_label_map(
                case.labels[frame - 1], case.cine.affine, f"{stem}_gt.nii.gz", case.cine.spacing_mm
            )
    return root


def write_synthetic_case(case: SyntheticCase, folder: str | Path) -> Path:
    """Write ``synthetic_cine.nii.gz`` (4D image), ``synthetic_cine_gt.nii.gz`` (4D labels) and
    ``ground_truth.json`` (volumes per frame, ED/ES, ejection fractions, shifts, RV insertions) into
    ``folder``; NIfTI arrays are ``(i, j, k, t)`` with the cine's affine."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_cine_nifti(case.cine, folder / "synthetic_cine.nii.gz")
    write_label_map(case.labels, case.cine.affine, folder / "synthetic_cine_gt.nii.gz", case.cine.spacing_mm)
    truth = {
        "image": "synthetic_cine.nii.gz",
        "labels": "synthetic_cine_gt.nii.gz",
        "label_names": label_names_document(),
        "spacing_mm": list(case.cine.spacing_mm),
        "height_cm": case.cine.height_cm,
        "weight_kg": case.cine.weight_kg,
        "ed_index": case.ed_index,
        "es_index": case.es_index,
        "lv_ejection_fraction_percent": round(case.lv_ejection_fraction, 4),
        "rv_ejection_fraction_percent": round(case.rv_ejection_fraction, 4),
        "lv_volume_ml": [round(float(v), 4) for v in case.lv_volume_ml],
        "rv_volume_ml": [round(float(v), 4) for v in case.rv_volume_ml],
        "myo_volume_ml": [round(float(v), 4) for v in case.myo_volume_ml],
        "slice_shifts_mm_row_col": None
        if case.slice_shifts_mm is None
        else np.round(case.slice_shifts_mm, 4).tolist(),
        "rv_insertion_points": case.rv_insertion_points,
    }
    # written next to its place and renamed, so a failed write leaves no half file
    handle, staging = tempfile.mkstemp(prefix=".ground_truth.", suffix=".json", dir=folder)
    with os.fdopen(handle, "w") as f:
        json.dump(truth, f, indent=1)
    os.replace(staging, folder / "ground_truth.json")
    return folder
