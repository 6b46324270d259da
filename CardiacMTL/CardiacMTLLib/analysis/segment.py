"""Segmentation inference: pre-processing, batched network inference, softmax resampling, clean-up.

The steps of Baumgartner et al. (2017), in the order inference needs them: normalise the stack, resample
each slice in plane to the model's spacing, place it centrally into the network's field, run the network
on all slices of a frame as one batch, resample the **softmax** (not the labels) back to the native grid,
take the argmax there, and keep the largest connected component of each structure. The model is a
self-describing folder (``manifest.json`` + ``weights.pt``) written by ``cardiac-train``; the manifest
names the network class, its arguments and the pre-processing, so inference rebuilds exactly what was
trained.

On the CPU, to save work, the fully convolutional network runs on a square window of its field around the heart
(:func:`segment_volume`: placed by the middle slice; :func:`segment_cine`: by the first frame, the frames
after it in batches). The window is checked against the whole field: where the heart reaches its inner
edge a larger window or the whole field runs, and it is kept only where the network labels the heart as
on the whole field (the slices run both ways: at most ``WINDOW_DISAGREEMENT`` of the heart's pixels
relabelled); a study that fails the first check is segmented on the whole field throughout.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.preprocess import (
    center_crop_or_pad,
    centred_offset,
    heart_window,
    linear_taps,
    normalise_intensity,
    resample_with_taps,
    resize_bilinear,
    touches_window_edge,
)
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.models.registry import SegmentationModel
from CardiacMTLLib.types import Label

# Background pixels this likely to be RV count as RV where the landmark detector looks for the septum's
# ends (rv_contact_mask); chosen on the biv-me expert points and the ACDC validation patients (landmark
# model card).
RV_CONTACT_PROBABILITY = 0.3
# The heart fills a third of the network's field or less: the network, fully convolutional, runs on a
# window around it with this much image to spare on every side (context for the convolutions, room for the
# heart's motion over the cycle), falling back to the whole field where the heart reaches the window's edge.
HEART_MARGIN_MM = 30.0
WINDOW_GUARD_PX = 2
# ... and the window is kept only where the network labels the heart's pixels as on the whole field: a
# share of them relabelled above this (checked on the slices run both ways) means the context matters here
WINDOW_DISAGREEMENT = 0.03
# A cine whose window the check turns down this often keeps to the whole field (each check costs a frame):
# the network reads this study's hearts with the context around them
MAX_REJECTED = 1
# Slices per network call when the frames of a cine share a window. 16 windows of 96 or 128 pixels run as
# fast per slice as 64 on the CPU (0.25 s against 0.40 s for 64 slices of 96 pixels in batches of 16 and 64,
# one thread), and a Cancel waits for at most one call: the progress between calls is a cancel point
BATCH_SLICES = 16


def argmax_labels(probs: np.ndarray, axis: int = 0) -> np.ndarray:
    """``np.argmax(probs, axis).astype(np.uint8)`` (the first class on ties), by comparing the few classes'
    planes in turn, several times faster than numpy's reduction across a non-contiguous axis."""
    probs = np.moveaxis(np.asarray(probs), axis, 0)
    best = probs[0].copy()
    labels = np.zeros(best.shape, dtype=np.uint8)
    for k in range(1, probs.shape[0]):
        better = probs[k] > best
        labels[better] = k
        np.maximum(best, probs[k], out=best)
    return labels


CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


def _components_and_largest(mask: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The 3D connected components (26-connectivity) of a boolean mask and the label of the largest, or
    ``None`` when there is at most one component."""
    components, count = ndimage.label(mask, structure=CONNECTIVITY_26)
    if count <= 1:
        return components, None
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components, int(sizes.argmax())


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 3D connected component (26-connectivity) of a boolean ``(slices, rows, cols)`` mask."""
    components, largest = _components_and_largest(mask)
    return components > 0 if largest is None else components == largest


def largest_component_per_structure(labels: np.ndarray) -> np.ndarray:
    """Keep, for every label, only its largest 3D connected component (26-connectivity).

    Components are found inside the bounding box of the labelled voxels only (the same components: there
    is nothing outside it), a small part of the image for a heart in a short-axis field of view.
    """
    out = labels.copy()
    box = []
    for axis in range(labels.ndim):
        present = np.flatnonzero(labels.any(axis=tuple(a for a in range(labels.ndim) if a != axis)))
        if not present.size:
            return out
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    box = tuple(box)
    inside, kept = labels[box], out[box]
    # the values present: a count of each (one pass) for the label maps' unsigned integers, else a sort
    values = np.flatnonzero(np.bincount(inside.ravel())) if inside.dtype.kind == "u" else np.unique(inside)
    for value in values:
        if value != 0:
            mask = inside == value
            components, largest = _components_and_largest(mask)
            if largest is not None:  # else nothing to remove
                kept[mask & (components != largest)] = 0
    return out


def predict_probabilities(
    model: SegmentationModel, image: np.ndarray, spacing_mm: tuple[float, float, float]
) -> np.ndarray:
    """Softmax probabilities ``(classes, slices, rows, cols)`` on the native grid of a 3D stack.

    ``image`` is ``(slices, rows, cols)``; ``spacing_mm`` is ``(col, row, slice)`` as in :class:`Cine`.
    """
    return predict_with_areas(model, image, spacing_mm)[0]


def regresses_areas(model: SegmentationModel) -> bool:
    """Whether the network also regresses per-structure areas (the multi-task U-Net)."""
    return bool(getattr(model.net, "regresses_areas", False))


def saves_work(model: SegmentationModel) -> bool:
    """Whether the heart window is used: on the CPU, where the network's time is the analysis' largest
    part; a GPU runs the whole field as before."""
    return getattr(model.device, "type", "cpu") == "cpu"


def window_sum(density, logits, model: SegmentationModel):
    """Sum the area density over a window of the training crop's size, centred on the segmented heart.

    The regression path learned its areas on training crops (``manifest training.crop`` pixels, around
    the heart); summing its density over the larger inference field would add the small density it gives
    to background everywhere, so the sum is taken over a training-sized window around the stack's heart.
    """
    import torch

    crop = int(model.manifest.get("training", {}).get("crop", 0)) // 2  # density is at half resolution
    n, _, h, w = density.shape
    if crop <= 0 or crop >= min(h, w):
        return density.sum(dim=(2, 3))
    heart = (logits.argmax(dim=1) > 0)[:, ::2, ::2].any(dim=0)
    if bool(heart.any()):
        rows, cols = torch.nonzero(heart, as_tuple=True)
        cr, cc = float(rows.float().mean()), float(cols.float().mean())
    else:
        cr, cc = h / 2.0, w / 2.0
    r0 = int(min(max(round(cr - crop / 2), 0), h - crop))
    c0 = int(min(max(round(cc - crop / 2), 0), w - crop))
    return density[:, :, r0 : r0 + crop, c0 : c0 + crop].sum(dim=(2, 3))


def network_field(
    model: SegmentationModel, image: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """The stack as the network sees it: ``(slices, size, size)`` float32, normalised, resampled in plane to
    the model's spacing and placed centrally into its square field; with the ``(row, col)`` offset and the
    resampled ``(rows, cols)`` that undo the placing."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.size == 0:
        raise CardiacInputError(
            f"expected a non-empty 3D stack (slices, rows, cols), got shape {image.shape}"
        )
    _, rows, cols = image.shape
    target = model.target_spacing_mm
    res_rows = max(1, int(round(rows * spacing_mm[1] / target)))
    res_cols = max(1, int(round(cols * spacing_mm[0] / target)))
    # linear resampling with the pixel-edge convention (align_corners=False), as scipy's grid_mode zoom
    # used for the training data
    size = model.input_size
    if res_rows >= size and res_cols >= size:
        # the field lies inside the resampled stack (as center_crop_or_pad places it): only its part
        # is resampled
        r0, c0 = centred_offset((res_rows, res_cols), size)
        part = resize_bilinear(
            normalise_intensity(image), (res_rows, res_cols), slice(r0, r0 + size), slice(c0, c0 + size)
        )
        return part, (r0, c0), (res_rows, res_cols)
    x = resize_bilinear(normalise_intensity(image), (res_rows, res_cols))
    fill = float(x.min())  # the padding around a small image
    x, offset = center_crop_or_pad(x - fill, size)
    return x + fill, offset, (res_rows, res_cols)


def network_probabilities(
    model: SegmentationModel, field: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Softmax ``(slices, classes, h, w)`` of the network on a ``(slices, h, w)`` field (or a window of it,
    ``h`` and ``w`` multiples of 16), and the regressed areas of a multi-task network (else ``None``)."""
    if getattr(model, "runtime", "torch") == "openvino":
        return softmax(model.net(np.ascontiguousarray(field, dtype=np.float32)[:, None])), None
    import torch

    areas = None
    bf16 = model.precision == "bf16"
    with torch.inference_mode(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
        batch = torch.from_numpy(np.ascontiguousarray(field))[:, None]
        batch = batch.to(model.device, memory_format=torch.channels_last)
        if regresses_areas(model):
            from CardiacMTLLib.models.nets.mtl_unet import areas_mm2

            logits, density = model.net(batch, return_density=True)
            target = model.target_spacing_mm
            areas = areas_mm2(window_sum(density.float(), logits, model), target * target).cpu().numpy()
        else:
            logits = model.net(batch)
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
    return probs, areas


def to_native_grid(
    field_probs: np.ndarray, offset: tuple[int, int], resampled: tuple[int, int], native: tuple[int, int]
) -> np.ndarray:
    """Softmax of the network's field ``(slices, classes, size, size)`` back on the native grid,
    ``(classes, slices, rows, cols)``: the placing undone, background outside the field, resampled
    linearly (the softmax, not the labels). :func:`native_part` on the whole grid.
    """
    return on_whole_grid(*native_part(field_probs, offset, resampled, native), native)


def on_whole_grid(part: np.ndarray, rows: slice, cols: slice, native: tuple[int, int]) -> np.ndarray:
    """A :func:`native_part` softmax ``(classes, slices, ...)`` on the whole native grid: background
    (probability 1) outside the part."""
    out = np.zeros(part.shape[:2] + tuple(native), dtype=np.float32)
    out[0] = 1.0
    out[:, :, rows, cols] = part
    return out


def native_part(
    field_probs: np.ndarray, offset: tuple[int, int], resampled: tuple[int, int], native: tuple[int, int]
) -> tuple[np.ndarray, slice, slice]:
    """The part of :func:`to_native_grid`'s softmax that is not certain background, and where it lies.

    Only the part of the native grid whose resampling reads a pixel that is not certain background is
    resampled (a windowed run leaves most of the field exactly background); the rest is background, as
    the resampling of a constant gives. Returns ``(classes, slices, rows part, cols part)`` and the
    ``rows`` and ``cols`` slices of the native grid it covers (empty where all is background), so that
    the label map and its scores are made on that part alone. The field is placed on the resampled grid
    only where that part's resampling reads it: the same numbers as placing all of it
    (:func:`~CardiacMTLLib.analysis.preprocess.uncrop`, background outside the field) and resampling
    the part.
    """
    size = field_probs.shape[-1]
    # the field's pixels on the resampled grid: field row i is grid row i + offset[0] (columns alike)
    within = [slice(max(-o, 0), max(min(size, n - o), 0)) for o, n in zip(offset, resampled, strict=True)]
    uncertain = (field_probs[:, 0, within[0], within[1]] != 1.0).any(axis=0)
    if not uncertain.any():
        part = np.zeros((field_probs.shape[1], field_probs.shape[0], 0, 0), dtype=np.float32)
        return part, slice(0, 0), slice(0, 0)
    reads, taps = [], []
    for axis, n_out in ((0, native[0]), (1, native[1])):
        present = np.flatnonzero(uncertain.any(axis=1 - axis)) + within[axis].start + offset[axis]
        first, second, weight = linear_taps(resampled[axis], n_out)
        touched = np.flatnonzero(
            ((first >= present[0]) & (first <= present[-1]))
            | ((second >= present[0]) & (second <= present[-1]))
        )
        reads.append(slice(int(touched[0]), int(touched[-1]) + 1))
        taps.append((first[reads[-1]], second[reads[-1]], weight[reads[-1]]))
    # the block of the resampled grid those taps read: background, with the field where it lies
    (lo_r, hi_r), (lo_c, hi_c) = ((int(f.min()), int(s.max()) + 1) for f, s, _ in taps)
    block = np.zeros(field_probs.shape[:2] + (hi_r - lo_r, hi_c - lo_c), dtype=np.float32)
    block[:, 0] = 1.0
    source = [
        slice(max(lo - o, 0), min(hi - o, size))
        for (lo, hi), o in zip(((lo_r, hi_r), (lo_c, hi_c)), offset, strict=True)
    ]
    if source[0].stop > source[0].start and source[1].stop > source[1].start:
        block[
            :,
            :,
            source[0].start + offset[0] - lo_r : source[0].stop + offset[0] - lo_r,
            source[1].start + offset[1] - lo_c : source[1].stop + offset[1] - lo_c,
        ] = field_probs[:, :, source[0], source[1]]
    (first_r, second_r, weight_r), (first_c, second_c, weight_c) = taps
    part = resample_with_taps(block, first_r - lo_r, second_r - lo_r, weight_r, axis=-2)
    part = resample_with_taps(part, first_c - lo_c, second_c - lo_c, weight_c, axis=-1)
    return part.transpose(1, 0, 2, 3), reads[0], reads[1]  # (classes, slices, rows part, cols part)


def labels_on_part(part: np.ndarray, rows: slice, cols: slice, native: tuple[int, int]) -> np.ndarray:
    """The cleaned label map ``(slices, rows, cols)`` of a :func:`native_part` softmax: the argmax on the
    part, background elsewhere, the largest component of every structure kept (as
    ``largest_component_per_structure(argmax_labels(to_native_grid(...)))``)."""
    raw = np.zeros((part.shape[1],) + tuple(native), dtype=np.uint8)
    if part.size:
        raw[:, rows, cols] = argmax_labels(part)
    return largest_component_per_structure(raw)


def rv_likely_on_part(part: np.ndarray, rows: slice, cols: slice, shape: tuple[int, ...]) -> np.ndarray:
    """The pixels of a ``shape`` stack whose RV probability in a :func:`native_part` softmax exceeds
    ``RV_CONTACT_PROBABILITY`` (none outside the part)."""
    likely = np.zeros(shape, dtype=bool)
    likely[:, rows, cols] = part[1] > RV_CONTACT_PROBABILITY
    return likely


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Softmax of fp32 logits along ``axis`` (the classes), in numpy."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def heart_labels(field_probs: np.ndarray) -> np.ndarray:
    """The cleaned labels ``(slices, h, w)`` of the network's softmax ``(slices, classes, h, w)`` on its
    field: the heart the window is placed around and checked on, without stray islands elsewhere."""
    return largest_component_per_structure(argmax_labels(field_probs, axis=1))


def label_disagreement(labels: np.ndarray, reference: np.ndarray) -> float:
    """The share of the heart's pixels (labelled in either map) whose label differs between two maps."""
    heart = (labels > 0) | (reference > 0)
    return float(((labels != reference) & heart).sum() / max(int(heart.sum()), 1))


def agrees_with_whole_field(field_probs: np.ndarray, middle: int, reference: np.ndarray) -> bool:
    """Whether the windowed softmax ``field_probs`` labels slice ``middle`` as the whole field did
    (``reference``, its cleaned labels there): at most ``WINDOW_DISAGREEMENT`` of the heart relabelled."""
    labels = heart_labels(field_probs[middle : middle + 1])[0]
    return label_disagreement(labels, reference) <= WINDOW_DISAGREEMENT


def locate_heart(
    model: SegmentationModel, field: np.ndarray
) -> tuple[tuple[int, int, int] | None, int, np.ndarray]:
    """The window of the network's field around the heart, found by running the whole field on the middle
    slice of ``field`` (``None``: no heart there, or it fills the field); with that slice's index and its
    whole-field labels, which the windowed result is checked against."""
    middle = field.shape[0] // 2
    probs, _ = network_probabilities(model, field[middle : middle + 1])
    labels = heart_labels(probs)
    margin_px = HEART_MARGIN_MM / model.target_spacing_mm
    return heart_window(labels > 0, field.shape[-1], margin_px), middle, labels[0]


def field_prediction(
    model: SegmentationModel,
    field: np.ndarray,
    window: tuple[int, int, int] | None,
    window_probs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int, int] | None, np.ndarray]:
    """The network's softmax on the whole of a prepared ``(slices, size, size)`` field, computed on
    ``window`` of it (background outside) unless the heart reaches the window's inner edge: then on a
    window around all of the heart found so far, else on the whole field.

    ``window_probs`` is the network's output on ``window`` when it was computed already (several frames
    in one batch). Returns the field's softmax ``(slices, classes, size, size)``, the regressed areas, the
    window used (``None``: the whole field) and the field's foreground (argmax not background).
    """
    size = field.shape[-1]
    field_probs, areas = None, None
    while window is not None:
        r0, c0, w = window
        if window_probs is not None:
            probs, window_probs = window_probs, None
        else:
            probs, areas = network_probabilities(model, field[:, r0 : r0 + w, c0 : c0 + w])
        field_probs = np.zeros((field.shape[0], probs.shape[1], size, size), dtype=np.float32)
        field_probs[:, 0] = 1.0
        field_probs[:, :, r0 : r0 + w, c0 : c0 + w] = probs
        foreground = heart_labels(field_probs) > 0
        if not touches_window_edge(foreground[:, r0 : r0 + w, c0 : c0 + w], window, size, WINDOW_GUARD_PX):
            return field_probs, areas, window, foreground
        # the heart may go on beyond the window: a window around all of it found so far, else the field
        grown = heart_window(foreground, size, HEART_MARGIN_MM / model.target_spacing_mm)
        window = grown if grown is not None and grown[2] > w else None
    field_probs, areas = network_probabilities(model, field)
    return field_probs, areas, None, heart_labels(field_probs) > 0


def checked_window(
    model: SegmentationModel, field: np.ndarray, window: tuple[int, int, int] | None, field_probs: np.ndarray
) -> tuple[int, int, int] | None:
    """``window`` if the network, run on it, labels the stack ``field`` as it did on the whole field
    (``field_probs``, its softmax there), else ``None`` (keep to the whole field)."""
    if window is None:
        return None
    probs, _, used, _ = field_prediction(model, field, window)
    if used is None:
        return None
    disagreement = label_disagreement(heart_labels(probs), heart_labels(field_probs))
    return used if disagreement <= WINDOW_DISAGREEMENT else None


def predict_in_window(
    model: SegmentationModel,
    image: np.ndarray,
    spacing_mm: tuple[float, float, float],
    window: str | tuple[int, int, int] | None = "heart",
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int, int] | None, np.ndarray]:
    """:func:`predict_with_areas` with the network run on a window of its field around the heart.

    ``window`` is a ``(row, col, size)`` window of the field, ``"heart"`` to find one first
    (:func:`locate_heart`), or ``None``/``"full"`` for the whole field. Where the heart comes within
    ``WINDOW_GUARD_PX`` of a window's inner edge a larger window or the whole field is run instead
    (:func:`field_prediction`). Returns the probabilities, the areas, the window used (``None``: the whole
    field) and the foreground ``(slices, size, size)`` of the field (where the argmax is not background).
    """
    (part, rows, cols), areas, used, foreground = predict_part_in_window(model, image, spacing_mm, window)
    return on_whole_grid(part, rows, cols, image.shape[1:]), areas, used, foreground


def predict_part_in_window(
    model: SegmentationModel,
    image: np.ndarray,
    spacing_mm: tuple[float, float, float],
    window: str | tuple[int, int, int] | None = "heart",
) -> tuple[tuple[np.ndarray, slice, slice], np.ndarray | None, tuple[int, int, int] | None, np.ndarray]:
    """:func:`predict_in_window` with the probabilities as :func:`native_part` gives them: the part of
    the native grid that is not certain background, and its ``rows`` and ``cols``."""
    x, offset, resampled = network_field(model, image, spacing_mm)
    check = None
    if regresses_areas(model) or not saves_work(model):
        window = None  # regressed areas are summed over a training-sized window of the whole field
    elif window == "heart":
        window, middle, reference = locate_heart(model, x)
        check = (middle, reference)
    elif window == "full":
        window = None
    field_probs, areas, used, foreground = field_prediction(model, x, window)
    if used is not None and check is not None:
        if not agrees_with_whole_field(field_probs, *check):
            # the network reads this heart differently without the context around the window
            field_probs, areas, used, foreground = field_prediction(model, x, None)
    return native_part(field_probs, offset, resampled, image.shape[1:]), areas, used, foreground


def predict_with_areas(
    model: SegmentationModel,
    image: np.ndarray,
    spacing_mm: tuple[float, float, float],
    window: str | tuple[int, int, int] | None = "full",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities as :func:`predict_probabilities` and, for a multi-task network, the regressed areas.

    The areas are ``(slices, 3)`` in mm^2 for the RV cavity, LV myocardium and LV cavity (label values
    1, 2, 3), or ``None`` when the network has no regression path. ``window`` as in
    :func:`predict_in_window` (default: the network's whole field).
    """
    probs, areas, _, _ = predict_in_window(model, image, spacing_mm, window)
    return probs, areas


def rv_contact_mask(
    probs: np.ndarray, labels: np.ndarray, threshold: float = RV_CONTACT_PROBABILITY
) -> np.ndarray:
    """The RV for finding where it meets the septum: the labelled RV cavity plus the background pixels whose
    RV probability exceeds ``threshold`` (kept where connected to the RV as in the label map).

    The thin tips of the RV crescent along the septum are where the network is least sure; the argmax
    label map cuts them short and moves the insertion points towards the RV centre. ``probs`` is
    ``(classes, slices, rows, cols)`` and ``labels`` the label map made from it.
    """
    return connect_rv_contact(labels, probs[1] > threshold)


def connect_rv_contact(labels: np.ndarray, rv_likely: np.ndarray) -> np.ndarray:
    """:func:`rv_contact_mask` from the likely-RV pixels alone (``probs[1] > threshold``, what
    :func:`segment_cine` keeps for every frame), so that the connected RV is made only where it is used."""
    return largest_component((labels == Label.RV_CAVITY) | ((labels == Label.BACKGROUND) & rv_likely))


def segment_volume(
    model: SegmentationModel,
    image: np.ndarray,
    spacing_mm: tuple[float, float, float],
    rv_likely_out: list | None = None,
) -> np.ndarray:
    """Label map ``(slices, rows, cols)`` uint8 (0 bg, 1 RV, 2 Myo, 3 LV) of one 3D short-axis stack.

    When ``rv_likely_out`` is a list, the stack's likely-RV pixels are appended to it (as
    :func:`segment_cine` keeps them).
    """
    (part, rows, cols), _, _, _ = predict_part_in_window(model, image, spacing_mm, "heart")
    if rv_likely_out is not None:
        rv_likely_out.append(rv_likely_on_part(part, rows, cols, image.shape))
    return labels_on_part(part, rows, cols, image.shape[1:])


def segment_cine(
    model: SegmentationModel,
    cine,
    progress: Callable[[int, int], None] | None = None,
    slice_scores: dict | None = None,
    rv_likely: dict | None = None,
) -> np.ndarray:
    """Label maps ``(frames, slices, rows, cols)`` for every frame of a :class:`Cine`.

    ``progress(done, total)`` is called after each frame so GUIs and the CLI can show a bar. When
    ``slice_scores`` is a dict, it receives ``{frame index: qc.slice_network_scores(...)}`` (per-slice
    softmax uncertainty and, for the multi-task network, regressed against segmented areas). When
    ``rv_likely`` is a dict, it receives ``{frame index: RV probability > RV_CONTACT_PROBABILITY}`` (boolean)
    for the landmarks, which connect it to the RV (:func:`connect_rv_contact`) on the frames they read.
    """
    from CardiacMTLLib.analysis.qc import slice_network_scores

    labels = np.zeros(cine.data.shape, dtype=np.uint8)
    margin_px = HEART_MARGIN_MM / model.target_spacing_mm
    batch_frames = max(1, BATCH_SLICES // max(cine.num_slices, 1))
    middle = cine.num_slices // 2
    window = None  # the first frame runs on the whole field and places the window for the others
    t, rejected = 0, 0  # windows the check turned down: after MAX_REJECTED, the whole field throughout
    # regressed areas are summed over a window of the whole field; a GPU runs the whole field as before
    windowed = not regresses_areas(model) and saves_work(model)
    native = cine.data.shape[2:]

    def finish(f: int, field_probs: np.ndarray, offset, resampled, areas) -> None:
        """Frame ``f``'s softmax on the native grid, its label map and its scores."""
        part, rows, cols = native_part(field_probs, offset, resampled, native)
        labels[f] = labels_on_part(part, rows, cols, native)
        if slice_scores is not None:
            slice_scores[f] = slice_network_scores(
                part, labels[f], areas, cine.spacing_mm, native_pixels=native[0] * native[1]
            )
        if rv_likely is not None:
            rv_likely[f] = rv_likely_on_part(part, rows, cols, labels[f].shape)

    # A frame's post-processing (numpy, mostly outside the GIL) runs on a thread while the network runs
    # on the next frame: the network gains little from its second core (the 30-frame cine: 0.94 of the
    # wall time, paired runs). Frames are delivered, and progress reported, in order, one frame behind.
    pending: deque = deque()

    def deliver(keep: int) -> None:
        while len(pending) > keep:
            done, future = pending.popleft()
            future.result()  # the post-processing's exceptions are raised here
            if progress is not None:
                progress(done + 1, cine.num_frames)

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        while t < cine.num_frames:
            frames = [t] if window is None else list(range(t, min(cine.num_frames, t + batch_frames)))
            fields = [network_field(model, cine.data[f], cine.spacing_mm) for f in frames]
            batch_window, window_probs, references = window, [None] * len(frames), None
            if window is not None:  # the frames' windows in one batch: fewer, larger network calls
                r0, c0, w = window
                probs, _ = network_probabilities(
                    model, np.concatenate([x[:, r0 : r0 + w, c0 : c0 + w] for x, _, _ in fields])
                )
                window_probs = np.split(probs, len(frames))
                # every frame's middle slice on the whole field too: what its windowed labels are checked against
                probs, _ = network_probabilities(model, np.stack([x[middle] for x, _, _ in fields]))
                references = [heart_labels(p[None])[0] for p in probs]
            for i, (f, (x, offset, resampled)) in enumerate(zip(frames, fields, strict=True)):
                field_probs, areas, used, foreground = field_prediction(
                    model, x, batch_window, window_probs[i]
                )
                if used is not None and references is not None:
                    if not agrees_with_whole_field(field_probs, middle, references[i]):
                        # this frame on the whole field; the window stays for the others, each checked alike
                        field_probs, areas, _, foreground = field_prediction(model, x, None)
                        used = batch_window
                if used is None and windowed:  # a whole field: the heart of all its slices places the window
                    proposed = heart_window(foreground, foreground.shape[-1], margin_px)
                    window = (
                        checked_window(model, x, proposed, field_probs) if rejected < MAX_REJECTED else None
                    )
                    rejected += proposed is not None and window is None
                elif used != batch_window:
                    window = used  # grown around a heart that reached the window's edge
                pending.append((f, pool.submit(finish, f, field_probs, offset, resampled, areas)))
                deliver(1)
            t = frames[-1] + 1
        deliver(0)
    finally:  # after an exception (a Cancel raised by progress) no frame is left queued or running
        pool.shutdown(wait=True, cancel_futures=True)
    return labels
