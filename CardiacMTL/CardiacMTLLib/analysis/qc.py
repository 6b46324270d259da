"""Automatic quality control of a segmentation: the slices and frames whose results should not be trusted.

Rule-based checks on the label maps, each of which a reader of cardiac MRI would also make by eye:

- ``open myocardium``: on a slice with LV cavity, more than :data:`OPEN_WALL_FRACTION` of the cavity's
  border touches something other than myocardium (the wall is broken, so volumes and thickness are off),
  with the LV cavity the slice holds (what the volume loses if the slice is not LV: a basal slice in the atrium);
- ``missing LV`` / ``missing RV``: a slice without the structure lies between slices that have it (a gap
  that anatomy does not make);
- ``volume jump``: a frame whose LV or RV cavity volume departs from that of its neighbours in
  time (the median of the two frames either side) by more than :data:`VOLUME_JUMP_FRACTION` of the
  largest volume (a real cycle is smooth);
- ``empty frame``: no LV cavity at all.

Each finding names the frame (as the user numbers them), the slice (0-based, or ``None`` for a whole
frame) and the problem. Numpy and scipy only.
"""

from __future__ import annotations

import numpy as np

from CardiacMTLLib.analysis.indices import volume_curve_ml
from CardiacMTLLib.analysis.masks import fill_holes, open_wall_fractions
from CardiacMTLLib.types import Label

OPEN_WALL_FRACTION = 0.2
VOLUME_JUMP_FRACTION = 0.2
MIN_PIXELS = 10


def _open_wall_fraction(slice_labels: np.ndarray) -> float | None:
    """Share of the LV cavity's outer border that does not touch myocardium (None without a cavity)."""
    cavity = fill_holes(slice_labels == Label.LV_CAVITY)
    if cavity.sum() < MIN_PIXELS:
        return None
    fraction = open_wall_fractions(cavity, slice_labels == Label.LV_MYOCARDIUM)
    return None if np.isnan(fraction) else float(fraction)


def _gaps(present: np.ndarray) -> list[int]:
    """Slices without the structure lying between slices that have it."""
    idx = np.flatnonzero(present)
    if idx.size < 2:
        return []
    return [int(k) for k in range(idx[0] + 1, idx[-1]) if not present[k]]


def frame_qc(labels: np.ndarray, frame_number: int, spacing_mm=None) -> list[dict]:
    """Findings for one ``(slices, rows, cols)`` frame. With ``spacing_mm`` (x, y, z) an open myocardium
    also says how much LV cavity its slice holds: what the volume would lose if the slice is not LV (a
    basal slice in the atrium: 30 mL of the biv-me study's 193 mL LVEDV)."""
    findings = []
    lv_present = (labels == Label.LV_CAVITY).sum(axis=(1, 2)) >= MIN_PIXELS
    rv_present = (labels == Label.RV_CAVITY).sum(axis=(1, 2)) >= MIN_PIXELS
    if not lv_present.any():
        return [{"frame": frame_number, "slice": None, "problem": "empty frame: no LV cavity found"}]
    for k in range(labels.shape[0]):
        fraction = _open_wall_fraction(labels[k])
        if fraction is not None and fraction > OPEN_WALL_FRACTION:
            if spacing_mm is None:
                problem = f"{100 * fraction:.0f} % of the LV cavity border has no wall"
            else:  # the volume first: the report's one-line findings keep their start
                cavity_ml = (labels[k] == Label.LV_CAVITY).sum() * float(np.prod(spacing_mm)) / 1000.0
                problem = (
                    f"{cavity_ml:.1f} mL of LV cavity, {100 * fraction:.0f} % of its border without wall"
                )
            findings.append({"frame": frame_number, "slice": k, "problem": f"open myocardium: {problem}"})
    for name, present in (("LV", lv_present), ("RV", rv_present)):
        for k in _gaps(present):
            findings.append(
                {"frame": frame_number, "slice": k, "problem": f"missing {name}: between slices that have it"}
            )
    return findings


def segmentation_qc(
    labels: np.ndarray, spacing_mm, frame_numbers: list[int], frames: list[int], curve: dict | None = None
) -> list[dict]:
    """QC findings of a ``(frames, slices, rows, cols)`` segmentation.

    ``frames`` are the time positions whose slices are checked one by one (usually ED and ES); the volume
    curve check runs on every frame when there are at least 3 (``curve``: the labels'
    :func:`~CardiacMTLLib.analysis.indices.volume_curve_ml` where the caller has it).
    """
    findings = []
    for t in frames:
        findings += frame_qc(labels[t], frame_numbers[t], spacing_mm)
    if labels.shape[0] >= 3:
        curve = volume_curve_ml(labels, spacing_mm) if curve is None else curve
        for name in ("LV", "RV"):
            v = np.asarray(curve[name], dtype=float)
            reference = max(float(v.max()), 1e-6)
            # the median of the two frames either side (the cycle is periodic): one bad frame cannot
            # make its neighbours look bad too
            neighbours = np.median(np.stack([np.roll(v, s) for s in (-2, -1, 1, 2)]), axis=0)
            for t in np.flatnonzero(np.abs(v - neighbours) > VOLUME_JUMP_FRACTION * reference):
                findings.append(
                    {
                        "frame": frame_numbers[int(t)],
                        "slice": None,
                        "problem": f"volume jump: {name} cavity {v[t]:.0f} mL against {neighbours[t]:.0f} mL "
                        "in the neighbouring frames",
                    }
                )
    return findings


# --- network-based QC: the multi-task U-Net's regressed areas against its own segmentation -----------------

# Thresholds of the per-slice flags, set on the 20 validation patients of the shipped networks (ED and ES,
# 356 slices with heart, 70 of them with Dice < 0.8): each flags about the worst tenth of slices, of which
# about 80 % really have Dice < 0.8 (see weights/acdc_mtl_unet2d/MODEL_CARD.md). Area disagreement: the share
# of the slice's segmented heart area by which regressed and segmented areas differ (multi-task network only);
# entropy: the softmax entropy per mm^2 of segmented heart (any network).
AREA_DISAGREEMENT_THRESHOLD = 1.0
ENTROPY_THRESHOLD = 0.45
AREA_FLOOR_MM2 = 200.0


ENTROPY_FLOOR = 1e-7  # probabilities are clipped to this before their logarithm


def softmax_entropy(probabilities: np.ndarray, native_pixels: int | None = None) -> np.ndarray:
    """The softmax entropy ``-sum p log p`` of each slice of ``(classes, slices, rows, cols)``, summed over
    its pixels (probabilities clipped to ``ENTROPY_FLOOR``).

    A pixel that is certain background (probability 1, as the network's field leaves most of the image)
    adds the same small constant, that of its clipped zeros: such pixels outside the box of all the others
    are counted, not computed, since they are most of a short-axis image. With ``native_pixels``, the
    array is a part of a slice of that many pixels, outside which all is certain background.
    """
    probabilities = np.asarray(probabilities)
    classes, slices, rows, cols = probabilities.shape
    whole = rows * cols if native_pixels is None else int(native_pixels)
    floor = np.float32(ENTROPY_FLOOR)
    per_certain_pixel = float(-(classes - 1) * floor * np.log(floor))
    uncertain = (probabilities[0] != 1.0).any(axis=0)
    present_rows, present_cols = np.flatnonzero(uncertain.any(axis=1)), np.flatnonzero(uncertain.any(axis=0))
    if not present_rows.size:
        return np.full(slices, per_certain_pixel * whole)
    r, c = slice(present_rows[0], present_rows[-1] + 1), slice(present_cols[0], present_cols[-1] + 1)
    p = np.clip(probabilities[:, :, r, c], floor, 1.0)
    inside = -(p * np.log(p)).sum(axis=0).sum(axis=(1, 2))
    outside = whole - (r.stop - r.start) * (c.stop - c.start)
    return inside + per_certain_pixel * outside


def slice_network_scores(
    probabilities: np.ndarray,
    labels: np.ndarray,
    areas_mm2: np.ndarray | None,
    spacing_mm,
    native_pixels: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-slice reliability scores of one ``(slices, rows, cols)`` stack; higher means less reliable.

    - ``area_disagreement``: ``sum_k |regressed_k - segmented_k| / (sum_k segmented_k + floor)`` over the RV
      cavity, myocardium and LV cavity, in mm^2 (needs the multi-task network's ``areas_mm2``);
    - ``entropy``: the softmax entropy summed over the slice, divided by the same segmented area (the
      network's own uncertainty; available for any network).

    ``probabilities`` may be a part of the image outside which all is certain background, as
    :func:`~CardiacMTLLib.analysis.segment.native_part` gives it, with ``native_pixels`` the pixels of
    a whole slice (see :func:`softmax_entropy`).
    """
    pixel_mm2 = float(spacing_mm[0]) * float(spacing_mm[1])
    segmented = np.stack([(labels == k).sum(axis=(1, 2)) * pixel_mm2 for k in (1, 2, 3)], axis=1)
    denominator = segmented.sum(axis=1) + AREA_FLOOR_MM2
    entropy = softmax_entropy(probabilities, native_pixels) * pixel_mm2
    scores = {"segmented_area_mm2": segmented, "entropy": entropy / denominator}
    if areas_mm2 is not None:
        scores["regressed_area_mm2"] = np.asarray(areas_mm2, dtype=float)
        scores["area_disagreement"] = np.abs(areas_mm2 - segmented).sum(axis=1) / denominator
    return scores


def network_qc(scores: dict[str, np.ndarray], frame_number: int) -> list[dict]:
    """Findings for slices the network is unsure of (high softmax entropy) or whose regressed and segmented
    areas disagree (multi-task network only)."""
    findings = []
    for k in np.flatnonzero(scores["entropy"] > ENTROPY_THRESHOLD):
        findings.append(
            {
                "frame": frame_number,
                "slice": int(k),
                "problem": f"uncertain segmentation: softmax entropy {scores['entropy'][k]:.2f} per mm2 of heart "
                f"(threshold {ENTROPY_THRESHOLD})",
            }
        )
    if "area_disagreement" not in scores:
        return findings
    for k in np.flatnonzero(scores["area_disagreement"] > AREA_DISAGREEMENT_THRESHOLD):
        reg = scores["regressed_area_mm2"][k]
        seg = scores["segmented_area_mm2"][k]
        findings.append(
            {
                "frame": frame_number,
                "slice": int(k),
                "problem": (
                    "area disagreement: the network's regressed areas (RV {:.0f}, Myo {:.0f}, LV {:.0f} mm2) "
                    "differ from its segmentation (RV {:.0f}, Myo {:.0f}, LV {:.0f} mm2)"
                ).format(*reg, *seg),
            }
        )
    return findings
