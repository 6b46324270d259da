"""The synthetic cine: deterministic, contracting, with breath-hold shifts and RV insertion points."""

from __future__ import annotations

import json

import numpy as np
import pytest

from CardiacMTLLib.cine import read_cine
from CardiacMTLLib.synthetic import generate_synthetic_cine, write_synthetic_case

SMALL = {"num_frames": 6, "shape": (112, 112, 8), "spacing_mm": (2.5, 2.5, 10.0)}


def test_same_seed_gives_the_same_cine_and_another_seed_does_not():
    a, b, c = (generate_synthetic_cine(seed=s, **SMALL) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.cine.data, b.cine.data)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.cine.data, c.cine.data)


def test_heart_contracts_to_end_systole_and_relaxes_again():
    case = generate_synthetic_cine(**SMALL)
    assert case.ed_index == 0
    assert 1 <= case.es_index <= 3  # ES at ~37 % of the cycle
    lv = case.lv_volume_ml
    assert lv[case.es_index] < 0.6 * lv[0]
    assert lv[-1] > lv[case.es_index]
    # myocardium is nearly incompressible: its volume changes by only a few percent over the cycle
    assert np.ptp(case.myo_volume_ml) / case.myo_volume_ml.mean() < 0.06
    assert (case.rv_volume_ml > 0).all()


def test_blood_is_bright_and_myocardium_dark_like_ssfp():
    case = generate_synthetic_cine(**SMALL)
    image, labels = case.cine.data[0], case.labels[0]
    assert image[labels == 3].mean() > 2.0 * image[labels == 2].mean()
    assert image[labels == 1].mean() > 2.0 * image[labels == 2].mean()


def test_breath_hold_shifts_move_each_slice_of_the_heart():
    still = generate_synthetic_cine(seed=4, **SMALL)
    moved = generate_synthetic_cine(seed=4, breath_hold_shift_mm=8.0, **SMALL)
    norms = np.linalg.norm(moved.slice_shifts_mm, axis=1)
    assert norms.max() <= 8.0 + 1e-9 and norms.max() > 2.0
    k = int(np.argmax(norms))
    centroid = [np.argwhere(case.labels[0, k] == 3).mean(axis=0) * 2.5 for case in (still, moved)]
    displacement = np.linalg.norm(centroid[1] - centroid[0])
    assert displacement == pytest.approx(norms[k], abs=2.5)


def test_rv_insertion_points_lie_on_the_lv_epicardium_next_to_the_rv():
    case = generate_synthetic_cine(**SMALL)
    points = [p for p in case.rv_insertion_points if p["frame"] == 0]
    assert {p["label"] for p in points} == {"RV_INSERT_ANTERIOR", "RV_INSERT_INFERIOR"}
    for p in points:
        i, j, k = (int(round(v)) for v in p["ijk"])
        labels = case.labels[0, k]
        assert labels[j, i] == 2  # on the myocardium
        window = labels[max(j - 3, 0) : j + 4, max(i - 3, 0) : i + 4]
        assert (window == 1).any() and (window == 0).any()  # where RV meets the outside of the LV
    by_slice = {}
    for p in points:
        by_slice.setdefault(p["slice"], {})[p["label"]] = p["ijk"]
    for pair in by_slice.values():
        assert pair["RV_INSERT_ANTERIOR"][1] < pair["RV_INSERT_INFERIOR"][1]  # anterior is up (smaller row)


def test_written_case_reads_back_as_a_cine_with_its_ground_truth(tmp_path):
    case = generate_synthetic_cine(**SMALL)
    write_synthetic_case(case, tmp_path)
    cine = read_cine(tmp_path / "synthetic_cine.nii.gz")
    assert cine.data.shape == case.cine.data.shape
    np.testing.assert_allclose(cine.spacing_mm, case.cine.spacing_mm)
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["es_index"] == case.es_index
    assert truth["lv_volume_ml"][0] == pytest.approx(case.lv_volume_ml[0], abs=1e-3)
