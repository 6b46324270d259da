"""The plausibility gate after segmentation: a cine without motion between ED and ES (the same image twice,
a stroke volume no beating heart has) gets its indices but no diagnosis, with the reason."""

from __future__ import annotations

import dataclasses

import numpy as np

from CardiacMTLLib.analysis.gates import MIN_LVEF_PERCENT, ed_es_image_difference
from CardiacMTLLib.pipeline import measure
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.types import Label

SMALL = dict(num_frames=4, shape=(96, 96, 6), spacing_mm=(2.0, 2.0, 10.0))


def _measured(case, labels=None):
    return measure(
        case.cine, case.labels if labels is None else labels, {}, ed_frame=0, es_frame=case.es_index
    )


def test_a_beating_generated_heart_keeps_its_diagnosis():
    case = generate_synthetic_cine(seed=1, **SMALL)
    result = _measured(case)
    assert result.indices["LVEF (%)"] > 40
    assert ed_es_image_difference(case.cine, 0, case.es_index) > 0.01
    assert result.diagnosis["class"] is not None and "plausibility" not in result.provenance


def test_the_same_image_at_ed_and_es_withholds_the_diagnosis_whatever_the_volumes_say():
    case = generate_synthetic_cine(seed=1, **SMALL)
    still = np.repeat(case.cine.data[:1], case.cine.num_frames, axis=0)
    cine = dataclasses.replace(case.cine, data=still)
    # the labels of a beating heart: the volumes alone would pass (EDV well above ESV)
    result = measure(cine, case.labels, {}, ed_frame=0, es_frame=case.es_index)
    assert ed_es_image_difference(cine, 0, case.es_index) == 0.0
    assert result.indices["LVEF (%)"] > 40
    assert result.diagnosis["class"] is None
    assert "ED and ES images are the same" in result.diagnosis["error"]
    assert "no motion to measure" in result.diagnosis["error"]
    assert result.qc[0]["problem"].startswith("implausible result: the ED and ES images are the same")
    assert "ED and ES images are the same" in result.provenance["plausibility"]


def test_an_ejection_fraction_below_any_beating_heart_withholds_the_diagnosis():
    case = generate_synthetic_cine(seed=1, **SMALL)
    # the ED labels at every frame, with 2 % of the LV cavity given to the wall at ES: a stroke volume of
    # segmentation noise, with the end-diastolic volume still above the end-systolic one
    labels = np.repeat(case.labels[:1], case.cine.num_frames, axis=0)
    cavity = np.flatnonzero(labels[case.es_index] == Label.LV_CAVITY)
    labels[case.es_index].reshape(-1)[cavity[: cavity.size // 50]] = Label.LV_MYOCARDIUM
    result = _measured(case, labels)
    assert 0 < result.indices["LVEF (%)"] < MIN_LVEF_PERCENT
    assert ed_es_image_difference(case.cine, 0, case.es_index) > 0.01  # the images move: only the EF tells
    assert result.diagnosis["class"] is None and "withheld" in result.diagnosis["error"]
    assert f"is below the {MIN_LVEF_PERCENT:g} % of any beating heart" in result.diagnosis["error"]


def test_a_heart_without_its_rv_gets_no_diagnosis():
    """A mirrored patient001 was diagnosed MINF (0.55) with an RVEDV of 3.4 mL: no RV found."""
    case = generate_synthetic_cine(seed=1, **SMALL)
    labels = case.labels.copy()
    rv = labels == Label.RV_CAVITY
    keep = np.zeros_like(rv)
    first = np.argwhere(rv[0])[:5]  # five RV voxels left on ED, the rest is background
    keep[0][tuple(first.T)] = True
    labels[rv & ~keep] = Label.BACKGROUND
    result = _measured(case, labels)
    assert result.diagnosis["class"] is None
    assert "the RV was not found" in result.diagnosis["error"]
    assert _measured(case).diagnosis["class"] is not None  # with its RV, the same heart is diagnosed
