"""Automatic quality control of a segmentation: the slices and frames whose results should not be trusted.

Rule-based checks on the label maps, each of which a reader of cardiac MRI would also make by eye:

- ``open myocardium``: on a slice with LV cavity, more than :data:`OPEN_WALL_FRACTION` of the cavity's
  border touches something other than myocardium (the wall is broken, so volumes and thickness are off);
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
from scipy import ndimage

from .indices import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY, volume_curve_ml

OPEN_WALL_FRACTION = 0.2
VOLUME_JUMP_FRACTION = 0.2
MIN_PIXELS = 10


def _open_wall_fraction(slice_labels: np.ndarray) -> float | None:
    """Share of the LV cavity's outer border that does not touch myocardium (None without a cavity)."""
    cavity = ndimage.binary_fill_holes(slice_labels == LV_CAVITY)
    if cavity.sum() < MIN_PIXELS:
        return None
    ring = ndimage.binary_dilation(cavity) & ~cavity
    if not ring.any():
        return None
    return float(np.mean(slice_labels[ring] != LV_MYOCARDIUM))


def _gaps(present: np.ndarray) -> list[int]:
    """Slices without the structure lying between slices that have it."""
    idx = np.flatnonzero(present)
    if idx.size < 2:
        return []
    return [int(k) for k in range(idx[0] + 1, idx[-1]) if not present[k]]


def frame_qc(labels: np.ndarray, frame_number: int) -> list[dict]:
    """Findings for one ``(slices, rows, cols)`` frame."""
    findings = []
    lv_present = (labels == LV_CAVITY).sum(axis=(1, 2)) >= MIN_PIXELS
    rv_present = (labels == RV_CAVITY).sum(axis=(1, 2)) >= MIN_PIXELS
    if not lv_present.any():
        return [{"frame": frame_number, "slice": None, "problem": "empty frame: no LV cavity found"}]
    for k in range(labels.shape[0]):
        fraction = _open_wall_fraction(labels[k])
        if fraction is not None and fraction > OPEN_WALL_FRACTION:
            findings.append(
                {
                    "frame": frame_number,
                    "slice": k,
                    "problem": f"open myocardium: {100 * fraction:.0f} % of the LV cavity border has no wall",
                }
            )
    for name, present in (("LV", lv_present), ("RV", rv_present)):
        for k in _gaps(present):
            findings.append(
                {"frame": frame_number, "slice": k, "problem": f"missing {name}: between slices that have it"}
            )
    return findings


def segmentation_qc(
    labels: np.ndarray, spacing_mm, frame_numbers: list[int], frames: list[int]
) -> list[dict]:
    """QC findings of a ``(frames, slices, rows, cols)`` segmentation.

    ``frames`` are the time positions whose slices are checked one by one (usually ED and ES); the volume
    curve check runs on every frame when there are at least 3.
    """
    findings = []
    for t in frames:
        findings += frame_qc(labels[t], frame_numbers[t])
    if labels.shape[0] >= 3:
        curve = volume_curve_ml(labels, spacing_mm)
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
