"""The one definition of the segmentation metrics (Dice, Hausdorff)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def dice_per_class(pred: np.ndarray, truth: np.ndarray, classes=(1, 2, 3)) -> dict[int, float]:
    out = {}
    for k in classes:
        a, b = pred == k, truth == k
        denom = a.sum() + b.sum()
        out[k] = 1.0 if denom == 0 else float(2 * np.logical_and(a, b).sum() / denom)
    return out


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
