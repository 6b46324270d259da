"""The synthetic cine: exact ground truth, a beating heart laid out like ACDC, shifts, RV insertions, files."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from CardiacMTLLib.analysis.indices import select_end_diastole_systole, wall_thickness_mm
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case

# rows != cols and anisotropic pixels, so a swapped axis or spacing cannot go unnoticed
SMALL = {"num_frames": 8, "shape": (120, 112, 8), "spacing_mm": (2.5, 2.4, 10.0)}
VOXEL_ML = 2.5 * 2.4 * 10.0 / 1000.0


@pytest.fixture(scope="module")
def case():
    return generate_synthetic_cine(seed=0, **SMALL)


def test_same_seed_gives_the_same_cine_and_another_seed_does_not(case):
    again = generate_synthetic_cine(seed=0, **SMALL)
    other = generate_synthetic_cine(seed=1, **SMALL)
    np.testing.assert_array_equal(again.cine.data, case.cine.data)
    np.testing.assert_array_equal(again.labels, case.labels)
    assert again.rv_insertion_points == case.rv_insertion_points
    assert not np.array_equal(other.cine.data, case.cine.data)
    assert not np.array_equal(other.labels, case.labels)  # another heart, not only other noise


def test_cine_has_the_geometry_and_patient_but_leaves_ed_and_es_to_the_pipeline(case):
    cine = case.cine
    assert cine.data.shape == (8, 8, 120, 112) and cine.data.dtype == np.float32
    assert case.labels.shape == cine.data.shape and case.labels.dtype == np.uint8
    assert cine.spacing_mm == (2.5, 2.4, 10.0)
    np.testing.assert_allclose(np.diag(cine.affine)[:3], (2.5, 2.4, 10.0))
    assert cine.frame_numbers == list(range(8))
    assert np.all(np.diff(cine.trigger_times_ms) > 0)
    assert (cine.height_cm, cine.weight_kg) == (175.0, 75.0)
    assert cine.end_diastole is None and cine.end_systole is None
    assert cine.image_stems == ["synthetic_cine"]
    assert 0 <= cine.data.min() and cine.data.max() < 1500
    np.testing.assert_array_equal(cine.data, np.round(cine.data))  # int-like, as scanner data


def test_volumes_are_exact_voxel_counts(case):
    for label, volumes in ((3, case.lv_volume_ml), (1, case.rv_volume_ml), (2, case.myo_volume_ml)):
        np.testing.assert_allclose(volumes, (case.labels == label).sum(axis=(1, 2, 3)) * VOXEL_ML, rtol=1e-12)


def test_heart_contracts_to_end_systole_and_relaxes_again(case):
    lv = case.lv_volume_ml
    assert case.ed_index == 0
    assert 0.35 <= case.es_index / len(lv) <= 0.4
    assert select_end_diastole_systole(lv) == (case.ed_index, case.es_index)
    assert np.all(np.diff(lv[: case.es_index + 1]) < 0) and np.all(np.diff(lv[case.es_index :]) > 0)
    assert case.lv_ejection_fraction == pytest.approx(60.0, abs=3.0)
    assert 40.0 < case.rv_ejection_fraction < 65.0
    assert case.rv_volume_ml[case.es_index] == case.rv_volume_ml.min()
    # myocardium is nearly incompressible: its volume changes by only a few percent over the cycle
    assert np.ptp(case.myo_volume_ml) / case.myo_volume_ml.mean() < 0.03


def test_requested_ejection_fraction_is_met():
    weak = generate_synthetic_cine(seed=2, ejection_fraction=0.3, **SMALL)
    assert weak.lv_ejection_fraction == pytest.approx(30.0, abs=3.0)


def test_heart_is_laid_out_like_an_acdc_short_axis_stack(case):
    ed = case.labels[0]
    lv_slices = [k for k in range(ed.shape[0]) if (ed[k] == 3).any()]
    rv_slices = [k for k in range(ed.shape[0]) if (ed[k] == 1).any()]
    assert lv_slices[0] == 0 and len(lv_slices) >= ed.shape[0] - 1  # base at slice 0, apex at the end
    assert rv_slices == list(range(len(rv_slices))) and 0.6 <= len(rv_slices) / ed.shape[0] <= 0.9
    k = len(rv_slices) // 2
    rv = np.argwhere(ed[k] == 1).mean(axis=0) * (2.4, 2.5)
    lv = np.argwhere(ed[k] == 3).mean(axis=0) * (2.4, 2.5)
    assert rv[1] < lv[1] - 20  # RV to the left (smaller column) ...
    assert abs(rv[0] - lv[0]) < abs(rv[1] - lv[1])  # ... more than above or below
    fov = np.array(ed.shape[1:]) * (2.4, 2.5)
    assert np.all(np.abs(lv / fov - 0.5) < 0.1)  # the LV near the middle of the field of view
    wall = wall_thickness_mm(ed, case.cine.spacing_mm)
    assert 8.0 < wall["mean_mm"] < 11.5  # ~9 mm at ED, thicker in systole
    assert (
        wall_thickness_mm(case.labels[case.es_index], case.cine.spacing_mm)["mean_mm"] > wall["mean_mm"] + 2
    )


def test_blood_is_bright_and_myocardium_dark_like_ssfp(case):
    image, labels = case.cine.data[0], case.labels[0]
    myocardium = np.median(image[labels == 2])
    assert np.median(image[labels == 3]) > 2.5 * myocardium
    assert np.median(image[labels == 1]) > 2.0 * myocardium
    assert np.percentile(image, 5) < 0.3 * myocardium  # air and lungs are dark


def test_breath_hold_shifts_move_each_slice_of_the_heart(case):
    moved = generate_synthetic_cine(seed=0, breath_hold_shift_mm=8.0, **SMALL)
    norms = np.linalg.norm(moved.slice_shifts_mm, axis=1)
    assert norms.max() <= 8.0 and norms.max() > 3.0
    assert np.count_nonzero(norms > 1.0) >= 4  # per slice, not one shift for the stack
    assert np.all(case.slice_shifts_mm == 0)
    for k in range(case.labels.shape[1]):
        if not (case.labels[0, k] == 3).any():
            continue
        before = np.argwhere(case.labels[0, k] == 3).mean(axis=0) * (2.4, 2.5)
        after = np.argwhere(moved.labels[0, k] == 3).mean(axis=0) * (2.4, 2.5)
        np.testing.assert_allclose(after - before, moved.slice_shifts_mm[k], atol=1.2)


def test_rv_insertion_points_lie_on_the_lv_epicardium_next_to_the_rv(case):
    for frame in (case.ed_index, case.es_index):
        labels = case.labels[frame]
        slices_with_both = {
            k for k in range(labels.shape[0]) if (labels[k] == 1).any() and (labels[k] == 2).any()
        }
        points = [p for p in case.rv_insertion_points if p["frame"] == frame]
        assert {p["slice"] for p in points} == slices_with_both
        by_slice = {}
        for p in points:
            i, j, k = p["ijk"]
            np.testing.assert_allclose(case.cine.affine @ [i, j, k, 1.0], p["ras"] + [1.0], atol=1e-3)
            lv = labels[int(k)] >= 2
            epicardium = np.argwhere(lv & ~ndimage.binary_erosion(lv))
            rv = np.argwhere(labels[int(k)] == 1)
            to_mm = np.array([2.4, 2.5])  # (row, col) spacing
            # within a pixel or so of the epicardial boundary pixels, and of the RV cavity's tip, which
            # tapers to nothing at the insertion and so ends a pixel or two short of it in the labels
            assert np.min(np.linalg.norm((epicardium - (j, i)) * to_mm, axis=1)) < 1.5 * 2.5
            assert np.min(np.linalg.norm((rv - (j, i)) * to_mm, axis=1)) < 2.5 * 2.5
            by_slice.setdefault(p["slice"], {})[p["label"]] = np.array([j, i]) * to_mm
        for pair in by_slice.values():
            anterior, inferior = pair["RV_INSERT_ANTERIOR"], pair["RV_INSERT_INFERIOR"]
            assert anterior[0] < inferior[0]  # anterior is up in the image (smaller row)
            assert np.linalg.norm(anterior - inferior) > 20.0  # the two ends of the septum, not one point


def test_written_case_reads_back_as_a_cine_with_its_ground_truth(case, tmp_path):
    write_synthetic_case(case, tmp_path)
    cine = read_cine(tmp_path / "synthetic_cine.nii.gz")
    np.testing.assert_array_equal(cine.data, case.cine.data)
    np.testing.assert_allclose(cine.spacing_mm, case.cine.spacing_mm)
    np.testing.assert_allclose(cine.affine, case.cine.affine)
    labels = np.asarray(nib.load(tmp_path / "synthetic_cine_gt.nii.gz").dataobj)
    np.testing.assert_array_equal(labels.transpose(3, 2, 1, 0), case.labels)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert (truth["ed_index"], truth["es_index"]) == (case.ed_index, case.es_index)
    np.testing.assert_allclose(truth["lv_volume_ml"], case.lv_volume_ml, atol=1e-4)
    assert truth["lv_ejection_fraction_percent"] == pytest.approx(case.lv_ejection_fraction, abs=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ground_truth.json",
        "synthetic_cine.nii.gz",
        "synthetic_cine_gt.nii.gz",
    ]


@pytest.mark.parametrize(
    "arguments", [{"ejection_fraction": 1.2}, {"shape": (120, 112, 1)}, {"breath_hold_shift_mm": -1.0}]
)
def test_impossible_hearts_are_refused(arguments):
    with pytest.raises(CardiacInputError):
        generate_synthetic_cine(**{**SMALL, **arguments})
