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
    """The 0.5 and 99.5 percentiles of ``volume``, exactly as ``np.percentile`` (linear) gives them.

    The order statistics around each percentile are selected without the partial sort of the whole stack
    behind ``np.percentile``, several times faster: for integer images (DICOM stores integers) from a
    histogram of the values, for other finite images (a rescale slope makes floats) from a histogram of the
    top bits of their ordered binary keys and a partial sort of the one bin that holds each statistic. They
    are then interpolated with numpy's own arithmetic (:func:`_numpy_lerp`).
    """
    flat = np.asarray(volume, dtype=np.float32).ravel()
    n = flat.size
    if n >= 4096:
        smallest, largest = float(flat.min()), float(flat.max())
        if np.isfinite(smallest) and np.isfinite(largest):
            virtual = (n - 1) * np.true_divide(CLIP_PERCENTILES, 100)  # numpy's virtual indices (linear)
            lower = np.floor(virtual)
            ks = sorted({int(k) for k in lower} | {min(int(k) + 1, n - 1) for k in lower})
            if largest - smallest < 2**20 and np.array_equal(flat, np.rint(flat)):
                values = _integer_order_statistics(flat, smallest, largest, ks)
            else:
                values = _float_order_statistics(flat, smallest, ks)
            low, high = (
                _numpy_lerp(values[int(k)], values[min(int(k) + 1, n - 1)], v - k, v >= n - 1)
                for v, k in zip(virtual, lower, strict=True)
            )
            return low, high
    low, high = np.percentile(flat, CLIP_PERCENTILES)
    return float(low), float(high)


def _integer_order_statistics(flat: np.ndarray, smallest: float, largest: float, ks) -> dict[int, np.float32]:
    """The ``k``-th smallest values (from 0) of an array of integers in float32, from their histogram."""
    counts = np.bincount((flat - smallest).astype(np.int64), minlength=int(largest - smallest) + 1)
    cumulative = np.cumsum(counts)
    return {k: np.float32(smallest + float(np.searchsorted(cumulative, k, side="right"))) for k in ks}


def _float_order_statistics(flat: np.ndarray, smallest: float, ks) -> dict[int, np.float32]:
    """The ``k``-th smallest values (from 0) of a finite float32 array: a histogram of the top 16 bits of
    keys that order as the values do (the bits of a non-negative float as an unsigned integer; negative
    floats' bits inverted), then a partial sort of the bin holding each ``k``."""
    bits = flat.view(np.uint32)
    if smallest >= 0:  # -0.0 sorts with +0.0 once its sign bit is dropped
        top = (bits >> 16) & 0x7FFF
    else:
        top = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(0x80000000)) >> 16
    cumulative = np.cumsum(np.bincount(top, minlength=1 << 16))
    out = {}
    for k in ks:
        b = int(np.searchsorted(cumulative, k, side="right"))
        rank = k - (int(cumulative[b - 1]) if b else 0)
        out[k] = np.partition(flat[top == b], rank)[rank]
    return out


def _numpy_lerp(a: np.float32, b: np.float32, gamma: float, at_end: bool) -> float:
    """``np.percentile``'s linear interpolation between the order statistics ``a`` and ``b``, with its
    rounding (float32 difference, float64 weight, the other end's formula for ``gamma >= 0.5``)."""
    if at_end:  # the virtual index is the last one: the maximum
        return float(b)
    gamma = np.float64(gamma)
    difference = b - a
    if gamma >= 0.5:
        return float(b - difference * (1 - gamma))
    return float(a + difference * gamma)


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


def _resample_axis(planes: np.ndarray, size_out: int, part: slice, axis: int) -> np.ndarray:
    """Linear resampling of ``axis`` (-2: the rows, -1: the columns) to ``size_out`` positions, of which
    ``part`` is returned."""
    return resample_with_taps(planes, *(a[part] for a in linear_taps(planes.shape[axis], size_out)), axis)


def resample_with_taps(
    planes: np.ndarray, first: np.ndarray, second: np.ndarray, weight: np.ndarray, axis: int
) -> np.ndarray:
    """Linear resampling of ``axis`` (-2 or -1) with the taps of :func:`linear_taps`: the two taps gathered
    (whole rows, or elements within each row: no transposed copies) and blended in place."""
    lower = np.take(planes, first, axis=axis)
    out = np.take(planes, second, axis=axis)
    out -= lower
    out *= weight[:, None] if axis == -2 else weight
    out += lower
    return out


def resize_bilinear(
    planes: np.ndarray, size: tuple[int, int], rows: slice = slice(None), cols: slice = slice(None)
) -> np.ndarray:
    """Bilinear resampling of the last two axes of ``planes`` to ``size`` (rows, cols), float32: what
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` computes (no anti-aliasing),
    to within 2e-5, in numpy, so that inference needs no torch (and gives the same numbers whether torch
    is loaded or not). ``rows`` and ``cols`` select a part of the output (computed alone). Separable: the
    rows, then the columns.
    """
    planes = _resample_axis(np.asarray(planes, dtype=np.float32), int(size[0]), rows, axis=-2)
    return _resample_axis(planes, int(size[1]), cols, axis=-1)


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

    The window is on the network's grid: ``row``, ``col`` and ``size`` are multiples of ``multiple`` (the
    network's total down-sampling), so that every pixel of the window falls in the same pooling cells as
    on the whole field and the network reads the heart as it does there. A window shifted off that grid
    pools other pixels together: on the biv-me study 2-8 % of the heart's pixels were labelled otherwise
    than on the whole field, against 0.1-0.7 % on the grid. The window lies inside the field (``field_size``
    a multiple of ``multiple``). ``None`` when there is no foreground, or when the window would be nearly
    the whole field (then the network is run on the whole field, as without a window).
    """
    mask = np.asarray(foreground, dtype=bool).any(axis=0)
    if not mask.any():
        return None
    spans = []
    for axis in (1, 0):  # rows, then columns: the grid lines around the heart and its margin
        present = np.flatnonzero(mask.any(axis=axis))
        low = max(int(np.floor((present[0] - margin_px) / multiple)) * multiple, 0)
        high = min(int(np.ceil((present[-1] + 1 + margin_px) / multiple)) * multiple, field_size)
        spans.append((low, high))
    size = max(high - low for low, high in spans)
    if size > field_size - multiple:
        return None
    # the shorter side grows by whole grid steps, as evenly on both sides as they allow
    r0, c0 = (
        min(max(low - multiple * ((size - (high - low)) // multiple // 2), 0), field_size - size)
        for low, high in spans
    )
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
