"""Automatic QC: a clean segmentation has no findings, and each kind of damage is found where it was made."""

from __future__ import annotations

import numpy as np
import pytest

from CardiacMTLLib.analysis.qc import frame_qc, segmentation_qc
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine


@pytest.fixture(scope="module")
def case():
    return generate_synthetic_cine(
        seed=5, num_frames=10, shape=(112, 112, 8), spacing_mm=(1.6, 1.6, 10.0), subslices=1, noise_std=0.0
    )


def test_clean_segmentation_has_no_findings(case):
    frames = list(range(case.cine.num_frames))
    assert segmentation_qc(case.labels, case.cine.spacing_mm, case.cine.frame_numbers, frames) == []


def test_broken_wall_is_found_on_its_slice(case):
    labels = case.labels[case.ed_index].copy()
    k = 3
    rows, cols = np.nonzero(labels[k] == 2)
    centre_c = np.nonzero(labels[k] == 3)[1].mean()
    labels[k][rows[cols > centre_c], cols[cols > centre_c]] = 0  # remove the lateral half of the wall
    findings = frame_qc(labels, frame_number=7)
    assert [(f["frame"], f["slice"]) for f in findings] == [(7, k)]
    assert findings[0]["problem"].startswith("open myocardium")


def test_missing_slice_inside_the_ventricle_is_found(case):
    labels = case.labels[case.ed_index].copy()
    labels[2][labels[2] == 3] = 0
    labels[2][labels[2] == 2] = 0
    problems = {(f["slice"], f["problem"].split(":")[0]) for f in frame_qc(labels, 0)}
    assert (2, "missing LV") in problems


def test_volume_jump_names_the_frame(case):
    labels = case.labels.copy()
    t = 6
    labels[t][labels[t] == 3] = 0  # the LV cavity vanishes in one frame
    labels[t][labels[t] == 2] = 0
    findings = segmentation_qc(labels, case.cine.spacing_mm, case.cine.frame_numbers, [])
    jumps = [f for f in findings if f["problem"].startswith("volume jump: LV")]
    assert [f["frame"] for f in jumps] == [case.cine.frame_numbers[t]]


def test_empty_frame_is_reported_once(case):
    labels = np.zeros_like(case.labels[0])
    assert [f["problem"].split(":")[0] for f in frame_qc(labels, 3)] == ["empty frame"]
