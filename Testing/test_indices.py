"""Clinical indices: exact volumes on generated hearts, BSA, wall thickness on analytic rings, ED/ES."""

from __future__ import annotations

import numpy as np
import pytest

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.indices import (
    bsa_dubois,
    compute_indices,
    label_volumes_ml,
    select_end_diastole_systole,
    wall_thickness_mm,
)
from CardiacMTLLib.synthetic import generate_synthetic_cine


@pytest.fixture(scope="module")
def heart():
    return generate_synthetic_cine(seed=3, num_frames=10, shape=(128, 128, 8), spacing_mm=(2.0, 2.0, 10.0))


def test_ejection_fraction_of_generated_heart_is_exact(heart):
    ed, es = heart.labels[heart.ed_index], heart.labels[heart.es_index]
    indices = compute_indices(ed, es, heart.cine.spacing_mm)
    voxel_ml = 2.0 * 2.0 * 10.0 / 1000
    assert indices["LVEDV (mL)"] == pytest.approx((ed == 3).sum() * voxel_ml, abs=0.006)
    assert indices["LVESV (mL)"] == pytest.approx((es == 3).sum() * voxel_ml, abs=0.006)
    assert indices["RVEDV (mL)"] == pytest.approx((ed == 1).sum() * voxel_ml, abs=0.006)
    expected_ef = (
        100
        * (heart.lv_volume_ml[heart.ed_index] - heart.lv_volume_ml[heart.es_index])
        / heart.lv_volume_ml[heart.ed_index]
    )
    assert indices["LVEF (%)"] == pytest.approx(expected_ef, abs=0.01)
    assert 50 < indices["LVEF (%)"] < 70  # the generator's target EF is 60 %
    assert indices["LVM (g)"] == pytest.approx(heart.myo_volume_ml[heart.ed_index] * 1.05, abs=0.01)
    assert indices["LVSV (mL)"] == pytest.approx(indices["LVEDV (mL)"] - indices["LVESV (mL)"], abs=0.02)


def test_volumes_scale_with_the_voxel_volume():
    labels = np.zeros((2, 10, 10), dtype=np.uint8)
    labels[0, :5, :4] = 3  # 20 voxels
    labels[1, :3, :3] = 1  # 9 voxels
    volumes = label_volumes_ml(labels, (1.25, 1.25, 8.0))
    assert volumes["LV"] == pytest.approx(20 * 12.5 / 1000)
    assert volumes["RV"] == pytest.approx(9 * 12.5 / 1000)
    assert volumes["Myo"] == 0


def test_bsa_follows_the_dubois_formula():
    assert bsa_dubois(184, 95) == pytest.approx(0.007184 * 95**0.425 * 184**0.725)
    assert bsa_dubois(170, 70) == pytest.approx(1.81, abs=0.01)
    with pytest.raises(CardiacInputError):
        bsa_dubois(0, 70)


def test_indexed_values_need_height_and_weight(heart):
    ed, es = heart.labels[heart.ed_index], heart.labels[heart.es_index]
    without = compute_indices(ed, es, heart.cine.spacing_mm)
    assert (
        without["BSA (m2)"] is None and without["LVEDVi (mL/m2)"] is None and without["LVMi (g/m2)"] is None
    )
    with_bsa = compute_indices(ed, es, heart.cine.spacing_mm, height_cm=180, weight_kg=80)
    bsa = bsa_dubois(180, 80)
    assert with_bsa["BSA (m2)"] == pytest.approx(bsa, abs=0.005)
    assert with_bsa["LVEDVi (mL/m2)"] == pytest.approx(with_bsa["LVEDV (mL)"] / bsa, abs=0.01)
    assert with_bsa["LVMi (g/m2)"] == pytest.approx(with_bsa["LVM (g)"] / bsa, abs=0.01)


def _ring(inner_mm, outer_mm, spacing=(0.8, 0.8, 8.0), size=160, slices=3):
    rr, cc = np.mgrid[:size, :size]
    rho = np.hypot((rr - size / 2 + 0.5) * spacing[1], (cc - size / 2 + 0.5) * spacing[0])
    labels = np.zeros((slices, size, size), dtype=np.uint8)
    labels[:, rho <= outer_mm] = 2
    labels[:, rho <= inner_mm] = 3
    return labels


def test_wall_thickness_of_a_ring_is_its_width():
    wall = wall_thickness_mm(_ring(20, 30), (0.8, 0.8, 8.0))
    assert wall["mean_mm"] == pytest.approx(10.0, abs=0.8)
    assert wall["max_mm"] == pytest.approx(10.0, abs=0.8)
    assert len(wall["per_slice_max_mm"]) == 3


def test_wall_thickness_finds_a_hypertrophic_segment():
    labels = _ring(20, 28)
    rr, cc = np.mgrid[:160, :160]
    rho = np.hypot((rr - 79.5) * 0.8, (cc - 79.5) * 0.8)
    septum = (cc < 80) & (np.abs(rr - 79.5) < 20) & (rho <= 38) & (rho > 20)  # 18 mm thick on one side
    labels[:, septum] = 2
    wall = wall_thickness_mm(labels, (0.8, 0.8, 8.0))
    assert wall["max_mm"] == pytest.approx(18.0, abs=1.5)
    assert 8.0 < wall["mean_mm"] < 13.0


def test_end_diastole_and_systole_come_from_the_lv_curve(heart):
    ed, es = select_end_diastole_systole(heart.lv_volume_ml)
    assert (ed, es) == (heart.ed_index, heart.es_index)
    assert select_end_diastole_systole([50, 120, 80, 40, 60]) == (1, 3)


def test_mismatched_ed_and_es_shapes_are_refused():
    with pytest.raises(CardiacInputError, match=r"\(2, 4, 4\).*\(3, 4, 4\)"):
        compute_indices(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)), (1, 1, 1))
