"""The one definition of the segmentation metrics: Dice (of two masks, per label value, per structure) and
the symmetric Hausdorff distance in millimetres."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from CardiacMTLLib.types import STRUCTURES, Label

# the order the scores of the three structures are reported in (tables, manifests, the demo summary)
REPORTED_STRUCTURES = (Label.LV_CAVITY, Label.RV_CAVITY, Label.LV_MYOCARDIUM)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice overlap ``2 |A & B| / (|A| + |B|)`` of two boolean masks of the same shape; 1.0 when both are
    empty (nothing to find, nothing found)."""
    a, b = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks must have the same shape, got {a.shape} and {b.shape}")
    denominator = int(a.sum()) + int(b.sum())
    return 1.0 if denominator == 0 else float(2 * np.logical_and(a, b).sum() / denominator)


def dice_per_class(
    pred: np.ndarray, truth: np.ndarray, classes=tuple(int(s) for s in STRUCTURES)
) -> dict[int, float]:
    """``{label value: Dice}`` of two label maps, for each value of ``classes`` (default: the three
    structures of :class:`~CardiacMTLLib.types.Label`)."""
    return {int(k): dice(pred == k, truth == k) for k in classes}


def dice_by_structure(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``{"LV": .., "RV": .., "Myo": ..}``: Dice of each structure of two label maps, keyed by the short
    names of :class:`~CardiacMTLLib.types.Label`, in the reported order (LV, RV, Myo)."""
    return {s.short_name: dice(pred == s, truth == s) for s in REPORTED_STRUCTURES}


def hausdorff_mm(pred: np.ndarray, truth: np.ndarray, spacing_zyx: tuple[float, float, float]) -> float:
    """Symmetric Hausdorff distance (mm) between two binary 3D masks' surfaces; nan if either is empty."""
    if not pred.any() or not truth.any():
        return float("nan")

    def surface(mask):
        return mask & ~ndimage.binary_erosion(mask)

    sp, st = surface(pred), surface(truth)
    dt_truth = ndimage.distance_transform_edt(~st, sampling=spacing_zyx)
    dt_pred = ndimage.distance_transform_edt(~sp, sampling=spacing_zyx)
    return float(max(dt_truth[sp].max(), dt_pred[st].max()))
