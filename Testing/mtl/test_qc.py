"""Automatic QC: a clean segmentation has no findings, and each kind of damage is found where it was made."""

from __future__ import annotations

import numpy as np
import pytest

from CardiacMTLLib.analysis.masks import fill_holes, has_wall, open_wall_fractions
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
    # with the spacing it says what the slice weighs in the volume, as the volumes count it
    (finding,) = frame_qc(labels, 7, case.cine.spacing_mm)
    cavity_ml = (labels[k] == 3).sum() * np.prod(case.cine.spacing_mm) / 1000.0
    assert finding["problem"].startswith(f"open myocardium: {cavity_ml:.1f} mL of LV cavity, ")
    assert finding["problem"].endswith("% of its border without wall")
    assert cavity_ml > 1.0


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


def test_a_slice_is_lv_where_myocardium_surrounds_at_least_half_of_its_cavity():
    """The basal-slice convention the motion tracking and the wall thickening use: a stack of a closed
    ring, a ring open over a third and over two thirds of its border, and a slice without cavity."""
    rows, cols = np.mgrid[:64, :64]
    radius = np.hypot(rows - 32, cols - 32)
    angle = np.degrees(np.arctan2(rows - 32, cols - 32))
    planes = np.zeros((4, 64, 64), dtype=np.uint8)
    for k, open_deg in enumerate((0, 120, 240)):
        planes[k][radius < 12] = 3
        planes[k][(radius >= 12) & (radius < 17) & (np.mod(angle + 180, 360) >= open_deg)] = 2
    cavity, myocardium = fill_holes(planes == 3), planes == 2
    fractions = open_wall_fractions(cavity, myocardium)
    assert fractions[0] == 0.0 and 0.25 < fractions[1] < 0.42 and 0.58 < fractions[2] < 0.75
    assert np.isnan(fractions[3])
    assert has_wall(cavity, myocardium).tolist() == [True, True, False, False]
    for k in range(3):  # the QC reads the same measure
        labels = np.zeros((1, 64, 64), dtype=np.uint8)
        labels[0] = planes[k]
        findings = frame_qc(labels, 0)
        assert bool(findings) == (k > 0) and (not findings or findings[0]["problem"].startswith("open"))
