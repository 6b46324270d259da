"""Helpers the short- and long-axis landmark detectors share."""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------------------------------
# RV insertion points from a label map


def longest_circular_run(flags: np.ndarray) -> tuple[int, int]:
    """``(first index, length)`` of the longest run of true values in a circular sequence (runs may wrap
    around its end); ``(0, 0)`` when no value is true, ``(0, n)`` when all are."""
    flags = np.asarray(flags, dtype=bool)
    n = flags.size
    if flags.all():
        return 0, n
    start = int(np.argmin(flags))  # a false value: no run wraps past it
    rolled = np.append(np.roll(flags, -start), False)
    best_len, best_start, run_start = 0, 0, None
    for i, value in enumerate(rolled):
        if value and run_start is None:
            run_start = i
        elif not value and run_start is not None:
            if i - run_start > best_len:
                best_len, best_start = i - run_start, run_start
            run_start = None
    return (best_start + start) % n if best_len else 0, best_len


# --------------------------------------------------------------------------------------------------
# the regression network's input (training and inference share it)


def network_input(
    image: np.ndarray, spacing_rc_mm: tuple[float, float], target_spacing_mm: float, size: int
) -> tuple[np.ndarray, dict]:
    """One 2D image as the landmark network sees it: whitened, resampled, zero-padded/cropped to ``size``.

    As in the MESA paper the image is whitened on its own (zero mean, unit standard deviation) and placed
    centrally into a ``size`` x ``size`` field padded with zeros; it is first resampled in plane to
    ``target_spacing_mm`` so that one network serves every pixel size. Returns the ``(size, size)``
    float32 input and the geometry that :func:`to_native_rc` needs to map predictions back.
    """
    from CardiacMTLLib.analysis.preprocess import center_crop_or_pad, resample_inplane

    image = np.asarray(image, dtype=np.float32)
    std = float(image.std())
    whitened = (image - float(image.mean())) / (std if std > 0 else 1.0)
    resampled = resample_inplane(whitened[np.newaxis], spacing_rc_mm, target_spacing_mm)[0]
    cropped, offset = center_crop_or_pad(resampled[np.newaxis], size)
    geometry = {
        "scale_rc": (resampled.shape[0] / image.shape[0], resampled.shape[1] / image.shape[1]),
        "offset_rc": offset,
        "size": size,
    }
    return cropped[0].astype(np.float32), geometry


def to_network_units(points_rc, geometry: dict) -> np.ndarray:
    """Native ``(row, col)`` points to the network's normalised ``(x, y)`` = ((col + 0.5) / size, ...)."""
    out = []
    for r, c in points_rc:
        rr = (r + 0.5) * geometry["scale_rc"][0] - 0.5 - geometry["offset_rc"][0]
        cc = (c + 0.5) * geometry["scale_rc"][1] - 0.5 - geometry["offset_rc"][1]
        out += [(cc + 0.5) / geometry["size"], (rr + 0.5) / geometry["size"]]
    return np.array(out, dtype=np.float32)


def to_native_rc(values, geometry: dict) -> list[tuple[float, float]]:
    """Inverse of :func:`to_network_units`: network outputs to native ``(row, col)`` points."""
    values = np.asarray(values, dtype=float).reshape(-1, 2)
    points = []
    for x, y in values:
        rr = y * geometry["size"] - 0.5 + geometry["offset_rc"][0]
        cc = x * geometry["size"] - 0.5 + geometry["offset_rc"][1]
        points.append(
            ((rr + 0.5) / geometry["scale_rc"][0] - 0.5, (cc + 0.5) / geometry["scale_rc"][1] - 0.5)
        )
    return points
