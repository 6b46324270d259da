"""Masks of the label maps: the LV cavity with its holes filled (papillary muscles and trabeculae inside it
are cavity), computed on the mask's bounding box rather than the whole slice, and how much of a cavity's
border has no wall (the QC's open myocardium, and the rule by which a slice is LV at all)."""

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


# A slice is LV in a frame only where myocardium surrounds at least half of its cavity's border (the
# common convention for the basal slice; SCMR post-processing recommendations, Schulz-Menger et al.
# 2020). Beyond it the "cavity" is the atrium or the outflow tract, which a basal slice cuts at systole
# as the base descends through it, and its "wall" cannot be followed: a slice open on 81-100 % of its
# border at systole gave a basal segment of the biv-me study a radial strain of 182 %. The expert ACDC
# labels never come near it (at most 20 % open, in 1 of 1805 slices).
MAX_OPEN_WALL_FRACTION = 0.5


def has_wall(cavity: np.ndarray, myocardium: np.ndarray) -> np.ndarray:
    """Whether myocardium surrounds enough of the border of ``cavity`` (filled) for the slice to be LV, for a
    2D mask or each plane of a stack (:data:`MAX_OPEN_WALL_FRACTION`; false without cavity)."""
    return open_wall_fractions(cavity, myocardium) <= MAX_OPEN_WALL_FRACTION  # NaN compares false
