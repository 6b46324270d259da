"""Masks of the label maps: the LV cavity with its holes filled (papillary muscles and trabeculae inside it
are cavity), computed on the mask's bounding box rather than the whole slice."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes`` of a 2D mask, or of each ``(rows, cols)`` plane of a stack of them,
    computed on the masks' bounding box plus one pixel: the background outside the box is one region
    touching the border, so the holes are the same, at the cost of the box rather than the whole slice.
    A stack is filled in one call with a structuring element that joins pixels within a plane only, so
    each plane's holes are its own."""
    planes = mask.reshape((-1,) + mask.shape[-2:]).any(axis=0)
    rows, cols = np.flatnonzero(planes.any(axis=1)), np.flatnonzero(planes.any(axis=0))
    if not rows.size:
        return np.zeros(mask.shape, dtype=bool)
    box = (
        Ellipsis,
        slice(max(rows[0] - 1, 0), min(rows[-1] + 2, mask.shape[-2])),
        slice(max(cols[0] - 1, 0), min(cols[-1] + 2, mask.shape[-1])),
    )
    structure = ndimage.generate_binary_structure(2, 1).reshape((1,) * (mask.ndim - 2) + (3, 3))
    out = np.zeros(mask.shape, dtype=bool)
    out[box] = ndimage.binary_fill_holes(mask[box], structure=structure)
    return out


def open_wall_fractions(cavity: np.ndarray, myocardium: np.ndarray) -> np.ndarray:
    """Share of the outer border of ``cavity`` (filled, as :func:`fill_holes` gives it) that does not touch
    ``myocardium``, for a 2D mask or each ``(rows, cols)`` plane of a stack: the pixels just outside the
    cavity (4-neighbours, within the plane) that are not myocardium, over all of them. NaN for a plane
    without cavity."""
    structure = ndimage.generate_binary_structure(2, 1).reshape((1,) * (cavity.ndim - 2) + (3, 3))
    ring = ndimage.binary_dilation(cavity, structure=structure) & ~cavity
    border = ring.sum(axis=(-2, -1))
    open_ = (ring & ~myocardium).sum(axis=(-2, -1))
    return np.where(border > 0, open_ / np.maximum(border, 1), np.nan)
