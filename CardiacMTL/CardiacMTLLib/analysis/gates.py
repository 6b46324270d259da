"""Gates: input that cannot support an answer is refused before the expensive work, and a result that is
not a plausible short-axis heart has its diagnosis withheld, with the reason.

Before segmentation (:func:`check_input`, :func:`check_workload`): a stack of fewer than
:data:`MIN_SLICES` slices, a constant image, a label map given as the image, ED and ES named as the same
frame, and a resampled grid that would not fit the memory budget are refused with a
:class:`~CardiacMTLLib.errors.CardiacInputError` naming the input. After segmentation
(:func:`plausibility_problems`): an LV found on too few slices, ED and ES images that are the same, an
end-diastolic volume not above the end-systolic one, an LV ejection fraction below what beating hearts
show, or an LV volume outside what hearts have are the reasons to withhold the diagnosis; the indices stay,
flagged by a QC finding. The thresholds are far outside what the 100 ACDC training
patients, the biv-me study and the synthetic demo give (none of them trips a gate).
"""

from __future__ import annotations

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import Cine, Label

# volumes (and so every index) need a stack through the ventricles
MIN_SLICES = 3
# a label map has a handful of integer values; an MR image has hundreds
MAX_LABEL_MAP_VALUES = 8
# a segmentation works on one frame at a time: its resampled softmax must fit comfortably in memory
MAX_FRAME_WORK_BYTES = 4 * 1024**3
# plausibility of the segmentation as a short-axis heart
MIN_LV_SLICE_FRACTION = 1 / 3
MIN_LVEDV_ML = 15.0
MAX_LVEDV_ML = 900.0
# the expert labels of the 100 ACDC training patients give LV ejection fractions down to 10.5 % (patient007,
# DCM; 10.7 % patient016), their analyses down to 9.9 % (patient016; the biv-me study 76 %, the demo 55 %);
# half of that is below any beating heart in a clinical cine: ED and ES then show the same phase (a
# motionless cine, one frame repeated) and the stroke volume is segmentation noise
MIN_LVEF_PERCENT = 5.0
# the ED and ES images of the 100 ACDC training patients differ by a mean absolute 1.3 % (patient003) to
# 5.2 % (patient095) of the ED image's 1st-99th percentile intensity range (biv-me 2.9 %, the demo 4.3 %);
# under 0.1 % they are the same image
MIN_ED_ES_IMAGE_DIFFERENCE = 1e-3
# the RV cavity at end diastole is at least 31 % of the LV's in the expert labels of the 100 ACDC training
# patients (patient009, DCM: 83 of 265 mL; the largest ratio 3.6, patient083, RV); a third of that is an RV
# not found (an image mirrored left to right, or cropped), which the criteria and the classifier would read
# as a heart without one
MIN_RV_LV_RATIO = 0.1


def check_input(cine: Cine, ed_frame: int | None = None, es_frame: int | None = None) -> None:
    """Refuse a cine that cannot give volumes, before the network runs (frames it lacks included)."""
    for frame in (ed_frame, es_frame):
        if frame is not None:
            cine.frame_index(frame)
    where = cine.source or "cine"
    if cine.num_slices < MIN_SLICES:
        raise CardiacInputError(
            f"{where}: {cine.num_slices} slice(s); volumes, ejection fractions and a diagnosis need a "
            f"short-axis stack of at least {MIN_SLICES} slices through the ventricles"
        )
    sample = cine.data[:, :, ::2, ::2]
    low, high = float(sample.min()), float(sample.max())
    if high - low <= 1e-6 * max(1.0, abs(high)):
        raise CardiacInputError(f"{where}: the image is constant (every voxel {high:g}); not an MR image")
    # a label map has few values: a sparse sample of an MR image already has more than a label map
    # (then the whole is neither rounded nor sorted)
    sparse = sample[:: max(1, sample.shape[0] // 2), :, ::8, ::8]
    few_values = np.unique(sparse).size <= MAX_LABEL_MAP_VALUES
    if few_values and np.all(sample == np.round(sample)):
        values = np.unique(sample)
        if values.size <= MAX_LABEL_MAP_VALUES:
            raise CardiacInputError(
                f"{where}: the image holds only the values {', '.join(f'{v:g}' for v in values)}: a label "
                "map (segmentation), not an MR image; give the image itself"
            )
    if ed_frame is not None and es_frame is not None and ed_frame == es_frame:
        raise CardiacInputError(
            f"{where}: end diastole and end systole are both frame {ed_frame}; they must be different frames"
        )


def check_workload(cine: Cine, model_spacing_mm: float, num_classes: int = 4) -> None:
    """Refuse a cine whose frames, resampled to the network's pixel size, would not fit in memory."""
    rows, cols = cine.data.shape[2:]
    row_mm, col_mm = cine.inplane_spacing_rc_mm
    resampled = (rows * row_mm / model_spacing_mm) * (cols * col_mm / model_spacing_mm)
    # the softmax of every slice on the resampled and on the native grid, in float32, with working copies
    work = cine.num_slices * (resampled + rows * cols) * num_classes * 4 * 3
    if work > MAX_FRAME_WORK_BYTES:
        raise CardiacInputError(
            f"{cine.source or 'cine'}: {cine.num_slices} slices of {rows} x {cols} pixels of {row_mm:g} x "
            f"{col_mm:g} mm would need about {work / 1024**3:.0f} GB per frame at the network's "
            f"{model_spacing_mm:g} mm pixels (budget {MAX_FRAME_WORK_BYTES / 1024**3:.0f} GB); "
            "not a cardiac cine of the usual size"
        )


def ed_es_image_difference(cine: Cine, ed_index: int, es_index: int) -> float:
    """The mean absolute difference of the ED and ES images of ``cine`` (frame indices), as a fraction of
    the ED image's 1st-99th percentile intensity range (0: the same image)."""
    ed = cine.data[ed_index].astype(np.float32)
    es = cine.data[es_index].astype(np.float32)
    low, high = np.percentile(ed, [1, 99])
    span = float(high - low) or float(ed.max() - ed.min()) or 1.0
    return float(np.abs(ed - es).mean()) / span


def plausibility_problems(
    labels_ed: np.ndarray,
    indices: dict,
    cine: Cine | None = None,
    ed_es: tuple[int, int] | None = None,
) -> list[str]:
    """Why the result cannot support a diagnosis (empty when it can): the segmentation is not a plausible
    short-axis heart, the cine shows no motion between ED and ES (``ed_es``: their frame indices in
    ``cine``), or the input's own metadata contradict themselves (``cine.extra["metadata_conflicts"]``)."""
    problems = list(cine.extra.get("metadata_conflicts", [])) if cine is not None else []
    with_lv = int(((labels_ed == Label.LV_CAVITY).sum(axis=(1, 2)) > 0).sum())
    if with_lv < MIN_LV_SLICE_FRACTION * labels_ed.shape[0]:
        problems.append(f"LV cavity found on {with_lv} of {labels_ed.shape[0]} slices at end diastole")
    edv, esv = indices.get("LVEDV (mL)"), indices.get("LVESV (mL)")
    if edv is not None and not MIN_LVEDV_ML <= edv <= MAX_LVEDV_ML:
        problems.append(
            f"LV end-diastolic volume {edv:g} mL, outside {MIN_LVEDV_ML:g}-{MAX_LVEDV_ML:g} mL of hearts"
        )
    rv = indices.get("RVEDV (mL)")
    if edv and rv is not None and rv < MIN_RV_LV_RATIO * edv:
        problems.append(
            f"RV cavity at end diastole {rv:g} mL, {100 * rv / edv:.0f} % of the LV's (at least about 30 % in "
            "hearts): the RV was not found (an image mirrored left to right, or cropped?)"
        )
    difference = ed_es_image_difference(cine, *ed_es) if cine is not None and ed_es is not None else None
    ef = indices.get("LVEF (%)")
    if difference is not None and difference < MIN_ED_ES_IMAGE_DIFFERENCE:
        # the volumes of two same images differ by segmentation noise only, either way: that is the reason
        # (a flat LV volume curve, as a cine of one repeated frame gives, picks one frame for both)
        ed, es = (cine.frame_numbers[i] for i in ed_es)
        frames = f"both frame {ed}" if ed == es else f"frames {ed} and {es}"
        problems.append(
            f"the ED and ES images are the same ({frames}, mean difference {100 * difference:.2g} % of the "
            "intensity range): no motion to measure"
        )
    elif edv is not None and esv is not None and edv <= esv:
        problems.append(
            f"the end-diastolic LV volume ({edv:g} mL) is not above the end-systolic one ({esv:g} mL): "
            "ED and ES are not end diastole and end systole"
        )
    elif ef is not None and ef < MIN_LVEF_PERCENT:
        problems.append(
            f"the LV ejection fraction ({ef:g} %) is below the {MIN_LVEF_PERCENT:g} % of any beating heart: "
            "ED and ES show no motion to measure"
        )
    return problems
