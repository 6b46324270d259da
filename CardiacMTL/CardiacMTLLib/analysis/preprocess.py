"""Pre-processing shared by training and inference (numpy/scipy only, no torch).

Following Baumgartner et al. (2017): each short-axis slice is resampled in plane to one common spacing
(no through-plane resampling, slices are 5-10 mm apart), placed centrally into an image of constant size,
and intensity-normalised. Training and inference call exactly these functions, so the network always sees
what it was trained on. Arrays are ``(slices, rows, cols)`` with ``spacing_rc_mm = (row, col)`` spacing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def normalise_intensity(volume: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance after clipping to the 0.5-99.5 percentiles (robust to bright fat/flow).

    Normalised over the whole stack rather than per slice so that apical and basal slices, which are
    mostly background, keep the same contrast as the mid-ventricular ones.
    """
    volume = np.asarray(volume, dtype=np.float32)
    low, high = clip_range(volume)
    clipped = np.clip(volume, low, high)
    std = float(clipped.std())
    return ((clipped - float(clipped.mean())) / (std if std > 0 else 1.0)).astype(np.float32)


CLIP_PERCENTILES = (0.5, 99.5)


def clip_range(volume: np.ndarray) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of ``volume``, as ``np.percentile`` (linear) gives them.

    Scanner images hold integers (DICOM stores them so): their order statistics are read from a histogram
    of the values in one pass, several times faster than the partial sort behind ``np.percentile``, with
    the same interpolation between the two order statistics around each percentile; other images go
    through ``np.percentile``.
    """
    flat = np.asarray(volume, dtype=np.float32).ravel()
    n = flat.size
    if n >= 4096:
        smallest, largest = float(flat.min()), float(flat.max())
        if largest - smallest < 2**20 and np.array_equal(flat, np.rint(flat)):
            counts = np.bincount((flat - smallest).astype(np.int64), minlength=int(largest - smallest) + 1)
            cumulative = np.cumsum(counts)

            def order_statistic(k: int) -> float:  # the k-th smallest value (from 0)
                return smallest + float(np.searchsorted(cumulative, k, side="right"))

            values = []
            for q in CLIP_PERCENTILES:
                position = q / 100.0 * (n - 1)
                lower = int(np.floor(position))
                a, b = order_statistic(lower), order_statistic(min(lower + 1, n - 1))
                values.append(a + (b - a) * (position - lower))
            return values[0], values[1]
    low, high = np.percentile(flat, CLIP_PERCENTILES)
    return float(low), float(high)


def zoom_factors(spacing_rc_mm: tuple[float, float], target_spacing_mm: float) -> tuple[float, float]:
    """In-plane zoom factors that take a slice from its spacing to the target spacing."""
    return (float(spacing_rc_mm[0]) / target_spacing_mm, float(spacing_rc_mm[1]) / target_spacing_mm)


def resample_inplane(
    stack: np.ndarray, spacing_rc_mm: tuple[float, float], target_spacing_mm: float, order: int = 1
) -> np.ndarray:
    """Resample a ``(slices, rows, cols)`` stack in plane to ``target_spacing_mm`` (linear by default)."""
    fr, fc = zoom_factors(spacing_rc_mm, target_spacing_mm)
    return ndimage.zoom(stack, (1.0, fr, fc), order=order, mode="nearest", grid_mode=True)


def resample_labels_inplane(
    labels: np.ndarray, spacing_rc_mm: tuple[float, float], target_spacing_mm: float, num_classes: int
) -> np.ndarray:
    """Resample a label stack by linear interpolation of its one-hot channels, then argmax."""
    channels = [
        resample_inplane((labels == k).astype(np.float32), spacing_rc_mm, target_spacing_mm)
        for k in range(num_classes)
    ]
    return np.argmax(np.stack(channels), axis=0).astype(np.uint8)


def linear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two source indices and the weight of the second for each output position of a linear resampling
    with the pixel-edge convention (``align_corners=False``): source ``(i + 0.5) * in / out - 0.5``,
    clamped to the first pixel, as torch's ``interpolate`` computes it."""
    scale = np.float32(size_in / size_out)  # in single precision, as torch's CPU kernel
    source = np.maximum(
        scale * (np.arange(size_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0
    )
    first = np.minimum(source.astype(np.intp), size_in - 1)
    second = np.minimum(first + 1, size_in - 1)
    return first, second, (source - first).astype(np.float32)


def _resample_axis(planes: np.ndarray, size_out: int, part: slice) -> np.ndarray:
    """Linear resampling of the second-to-last axis to ``size_out`` positions, of which ``part`` is
    returned: whole rows are gathered (contiguous copies) and blended in place."""
    first, second, weight = (a[part] for a in linear_taps(planes.shape[-2], size_out))
    upper = np.take(planes, first, axis=-2)
    out = np.take(planes, second, axis=-2)
    out -= upper
    out *= weight[:, None]
    out += upper
    return out


def resize_bilinear(
    planes: np.ndarray, size: tuple[int, int], rows: slice = slice(None), cols: slice = slice(None)
) -> np.ndarray:
    """Bilinear resampling of the last two axes of ``planes`` to ``size`` (rows, cols), float32: what
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` computes (no anti-aliasing),
    to within 2e-5, in numpy, so that inference needs no torch (and gives the same numbers whether torch
    is loaded or not). ``rows`` and ``cols`` select a part of the output (computed alone). Separable: the
    rows, then the columns (as rows of the transposed planes).
    """
    planes = np.asarray(planes, dtype=np.float32)
    planes = _resample_axis(planes, int(size[0]), rows)
    planes = _resample_axis(np.swapaxes(planes, -1, -2), int(size[1]), cols)
    return np.ascontiguousarray(np.swapaxes(planes, -1, -2))


def centred_offset(
    shape_rc: tuple[int, int], size: int, center_rc: tuple[float, float] | None = None
) -> tuple[int, int]:
    """The ``(row, col)`` offset at which :func:`center_crop_or_pad` places a ``size`` square field on an
    image of ``shape_rc``, centred on ``center_rc`` (default: the image centre)."""
    if center_rc is None:
        center_rc = (shape_rc[0] / 2.0, shape_rc[1] / 2.0)
    return int(round(center_rc[0] - size / 2.0)), int(round(center_rc[1] - size / 2.0))


def center_crop_or_pad(
    stack: np.ndarray, size: int, center_rc: tuple[float, float] | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """Place ``stack`` into ``(slices, size, size)``, centred on ``center_rc`` (default: image centre).

    Returns the new stack and the ``(row, col)`` offset such that
    ``out[:, r, c] == stack[:, r + offset[0], c + offset[1]]`` wherever both exist (zero elsewhere).
    """
    n, rows, cols = stack.shape
    r0, c0 = centred_offset((rows, cols), size, center_rc)
    out = np.zeros((n, size, size), dtype=stack.dtype)
    src_r = slice(max(r0, 0), min(r0 + size, rows))
    src_c = slice(max(c0, 0), min(c0 + size, cols))
    dst_r = slice(src_r.start - r0, src_r.stop - r0)
    dst_c = slice(src_c.start - c0, src_c.stop - c0)
    if src_r.stop > src_r.start and src_c.stop > src_c.start:
        out[:, dst_r, dst_c] = stack[:, src_r, src_c]
    return out, (r0, c0)


def uncrop(
    cropped: np.ndarray, offset_rc: tuple[int, int], shape_rc: tuple[int, int], fill: float = 0.0
) -> np.ndarray:
    """Inverse of :func:`center_crop_or_pad` for a ``(..., size, size)`` array."""
    size_r, size_c = cropped.shape[-2:]
    out = np.full(cropped.shape[:-2] + tuple(shape_rc), fill, dtype=cropped.dtype)
    r0, c0 = offset_rc
    src_r = slice(max(-r0, 0), min(size_r, shape_rc[0] - r0))
    src_c = slice(max(-c0, 0), min(size_c, shape_rc[1] - c0))
    if src_r.stop > src_r.start and src_c.stop > src_c.start:
        out[..., src_r.start + r0 : src_r.stop + r0, src_c.start + c0 : src_c.stop + c0] = cropped[
            ..., src_r, src_c
        ]
    return out


def heart_window(
    foreground: np.ndarray, field_size: int, margin_px: float, multiple: int = 16
) -> tuple[int, int, int] | None:
    """The square ``(row, col, size)`` window of a ``field_size`` field that holds the heart of a
    ``(slices, field_size, field_size)`` foreground mask with ``margin_px`` to spare on every side.

    ``size`` is a multiple of ``multiple`` (the network's total down-sampling) and the window lies inside
    the field. ``None`` when there is no foreground, or when the window would be nearly the whole field
    (then the network is run on the whole field, as without a window).
    """
    mask = np.asarray(foreground, dtype=bool).any(axis=0)
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    extent = max(bottom - top, right - left) + 2.0 * margin_px
    size = int(np.ceil(extent / multiple)) * multiple
    if size > field_size - multiple:
        return None
    r0 = int(round((top + bottom - size) / 2.0))
    c0 = int(round((left + right - size) / 2.0))
    r0 = min(max(r0, 0), field_size - size)
    c0 = min(max(c0, 0), field_size - size)
    return r0, c0, size


def touches_window_edge(
    foreground: np.ndarray, window: tuple[int, int, int], field_size: int, guard_px: int = 2
) -> bool:
    """Whether a ``(slices, size, size)`` foreground mask found in ``window`` comes within ``guard_px`` of
    an edge of the window that is not also an edge of the field (the heart may go on beyond it)."""
    r0, c0, size = window
    mask = np.asarray(foreground, dtype=bool)
    edges = []
    if r0 > 0:
        edges.append(mask[:, :guard_px, :])
    if r0 + size < field_size:
        edges.append(mask[:, -guard_px:, :])
    if c0 > 0:
        edges.append(mask[:, :, :guard_px])
    if c0 + size < field_size:
        edges.append(mask[:, :, -guard_px:])
    return any(bool(edge.any()) for edge in edges)
