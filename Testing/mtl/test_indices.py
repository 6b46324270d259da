"""Clinical indices: exact volumes on a generated heart, BSA, wall thickness on analytic shapes, ED/ES."""

from __future__ import annotations

import numpy as np
import pytest

from CardiacMTLLib.analysis.indices import (
    bsa_dubois,
    compute_indices,
    label_volumes_ml,
    select_end_diastole_systole,
    volume_curve_ml,
    wall_rays_mm,
    wall_thickness_mm,
)
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

SPACING = (2.0, 2.0, 10.0)
VOXEL_ML = 2.0 * 2.0 * 10.0 / 1000.0
REPORT_KEYS = [
    "ED frame",
    "ES frame",
    "LVEDV (mL)",
    "LVESV (mL)",
    "LVSV (mL)",
    "LVEF (%)",
    "LVM (g)",
    "RVEDV (mL)",
    "RVESV (mL)",
    "RVSV (mL)",
    "RVEF (%)",
    "Height (cm)",
    "Weight (kg)",
    "BSA (m2)",
    "LVEDVi (mL/m2)",
    "LVESVi (mL/m2)",
    "LVSVi (mL/m2)",
    "LVMi (g/m2)",
    "RVEDVi (mL/m2)",
    "RVESVi (mL/m2)",
    "RVSVi (mL/m2)",
    "Max wall thickness ED (mm)",
    "Mean wall thickness ED (mm)",
    "LVM/LVEDV (g/mL)",
    "RVEDV/LVEDV",
]
BSA_INDEXED = [key for key in REPORT_KEYS if "/m2" in key] + ["BSA (m2)"]


@pytest.fixture(scope="module")
def heart():
    return generate_synthetic_cine(seed=3, num_frames=10, shape=(144, 144, 8), spacing_mm=SPACING)


def _disk_labels(shape_px: int, spacing_rc, centre_mm=(0.3, 0.17)):
    """Row/col coordinates in mm of a square slice, origin near its centre."""
    rr, cc = np.mgrid[:shape_px, :shape_px]
    y = (rr - shape_px / 2 + 0.5) * spacing_rc[0] - centre_mm[0]
    x = (cc - shape_px / 2 + 0.5) * spacing_rc[1] - centre_mm[1]
    return y, x


def _ring(inner_mm, outer_mm, spacing_mm=(0.8, 0.8, 8.0), slices=3):
    """A stack of myocardial rings (label 2) around an LV cavity (label 3)."""
    size = int(2 * (outer_mm + 10) / min(spacing_mm[:2]))
    y, x = _disk_labels(size, (spacing_mm[1], spacing_mm[0]))
    rho = np.hypot(y, x)
    labels = np.zeros((slices, size, size), dtype=np.uint8)
    labels[:, rho <= outer_mm] = 2
    labels[:, rho <= inner_mm] = 3
    return labels


# --------------------------------------------------------------------------------------------------
# volumes, ejection fractions, mass


def test_ejection_fraction_of_generated_heart_is_exact(heart):
    ed, es = heart.labels[heart.ed_index], heart.labels[heart.es_index]
    indices = compute_indices(ed, es, SPACING, ed_frame=heart.ed_index, es_frame=heart.es_index)
    edv, esv = (ed == 3).sum() * VOXEL_ML, (es == 3).sum() * VOXEL_ML
    rv_edv, rv_esv = (ed == 1).sum() * VOXEL_ML, (es == 1).sum() * VOXEL_ML
    assert indices["LVEDV (mL)"] == pytest.approx(edv, rel=0.005)
    assert indices["LVESV (mL)"] == pytest.approx(esv, rel=0.005)
    assert indices["RVEDV (mL)"] == pytest.approx(rv_edv, rel=0.005)
    assert indices["RVESV (mL)"] == pytest.approx(rv_esv, rel=0.005)
    assert indices["LVEDV (mL)"] == pytest.approx(heart.lv_volume_ml[heart.ed_index], abs=0.006)
    assert indices["LVEF (%)"] == pytest.approx(100 * (edv - esv) / edv, abs=0.006)
    assert indices["RVEF (%)"] == pytest.approx(100 * (rv_edv - rv_esv) / rv_edv, abs=0.006)
    assert indices["LVEF (%)"] == pytest.approx(heart.lv_ejection_fraction, abs=0.006)
    assert indices["LVEF (%)"] == pytest.approx(60.0, abs=4.0)  # the generator's target EF
    assert indices["LVSV (mL)"] == pytest.approx(edv - esv, abs=0.006)
    assert indices["LVM (g)"] == pytest.approx(1.05 * (ed == 2).sum() * VOXEL_ML, abs=0.006)
    assert indices["LVM/LVEDV (g/mL)"] == pytest.approx(1.05 * (ed == 2).sum() / (ed == 3).sum(), abs=0.006)
    assert indices["RVEDV/LVEDV"] == pytest.approx(rv_edv / edv, abs=0.0006)
    assert (indices["ED frame"], indices["ES frame"]) == (heart.ed_index, heart.es_index)


def test_volumes_are_voxel_count_times_voxel_volume():
    labels = np.zeros((2, 10, 12), dtype=np.uint8)
    labels[0, :5, :4] = 3  # 20 voxels
    labels[1, :3, :3] = 1  # 9 voxels
    labels[1, 5:, 6:] = 2  # 30 voxels
    volumes = label_volumes_ml(labels, (1.25, 1.5, 8.0))  # 15 mm3 voxels
    assert volumes == {"LV": pytest.approx(0.3), "RV": pytest.approx(0.135), "Myo": pytest.approx(0.45)}


def test_volume_curve_has_one_value_per_frame(heart):
    curve = volume_curve_ml(heart.labels, SPACING)
    assert set(curve) == {"LV", "RV", "Myo"}
    np.testing.assert_allclose(curve["LV"], (heart.labels == 3).sum(axis=(1, 2, 3)) * VOXEL_ML)
    np.testing.assert_allclose(curve["Myo"], heart.myo_volume_ml)
    with pytest.raises(CardiacInputError, match="frames, slices, rows, cols"):
        volume_curve_ml(heart.labels[0], SPACING)


def test_report_has_the_clinical_keys_in_order_as_plain_numbers(heart):
    indices = compute_indices(heart.labels[0], heart.labels[heart.es_index], SPACING, 175.0, 75.0, 1, 9)
    assert list(indices) == REPORT_KEYS
    for key, value in indices.items():
        assert value is not None, key
        assert type(value) is (int if key.endswith("frame") else float), key


def test_indexed_values_are_none_without_height_and_weight(heart):
    ed, es = heart.labels[heart.ed_index], heart.labels[heart.es_index]
    for height, weight in ((None, None), (180.0, None), (None, 80.0)):
        indices = compute_indices(ed, es, SPACING, height_cm=height, weight_kg=weight)
        assert all(indices[key] is None for key in BSA_INDEXED)
        assert indices["LVEDV (mL)"] is not None and indices["ED frame"] is None
    indices = compute_indices(ed, es, SPACING, height_cm=180.0, weight_kg=80.0)
    bsa = bsa_dubois(180.0, 80.0)
    assert indices["BSA (m2)"] == pytest.approx(bsa, abs=0.005)
    assert indices["LVEDVi (mL/m2)"] == pytest.approx(indices["LVEDV (mL)"] / bsa, abs=0.01)
    assert indices["LVMi (g/m2)"] == pytest.approx(indices["LVM (g)"] / bsa, abs=0.01)
    assert indices["RVSVi (mL/m2)"] == pytest.approx(indices["RVSV (mL)"] / bsa, abs=0.01)


def test_ejection_fraction_of_an_empty_ventricle_is_unknown():
    labels = _ring(10, 16, spacing_mm=(1.0, 1.0, 8.0), slices=2)  # no RV at all
    indices = compute_indices(labels, labels, (1.0, 1.0, 8.0))
    assert indices["RVEDV (mL)"] == 0.0
    assert indices["RVEF (%)"] is None and indices["RVEDV/LVEDV"] == 0.0
    assert indices["LVEF (%)"] == 0.0


def test_mismatched_ed_and_es_shapes_are_refused():
    with pytest.raises(CardiacInputError, match=r"\(2, 4, 4\).*\(3, 4, 4\)"):
        compute_indices(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)), (1, 1, 1))


def test_bad_spacing_is_refused():
    with pytest.raises(CardiacInputError, match="spacing_mm"):
        label_volumes_ml(np.zeros((2, 4, 4)), (1.0, 0.0, 8.0))


def test_bsa_follows_the_dubois_formula():
    assert bsa_dubois(180, 80) == pytest.approx(1.9964, abs=5e-4)
    assert bsa_dubois(160, 50) == pytest.approx(1.5011, abs=5e-4)
    assert bsa_dubois(184, 95) == pytest.approx(0.007184 * 95**0.425 * 184**0.725, rel=1e-12)
    with pytest.raises(CardiacInputError, match="positive"):
        bsa_dubois(0, 70)


# --------------------------------------------------------------------------------------------------
# wall thickness


@pytest.mark.parametrize("spacing", [(0.8, 0.8, 8.0), (1.5, 1.5, 10.0), (1.2, 1.8, 8.0)])
def test_wall_thickness_of_a_ring_is_its_width(spacing):
    wall = wall_thickness_mm(_ring(20, 30, spacing), spacing)
    pixel = max(spacing[:2])
    assert wall["mean_mm"] == pytest.approx(10.0, abs=0.5 * pixel)
    assert wall["max_mm"] == pytest.approx(10.0, abs=pixel)
    assert len(wall["per_slice_max_mm"]) == 3
    assert wall["per_slice_mean_mm"][1] == pytest.approx(wall["mean_mm"], abs=1e-9)


def test_wall_thickness_is_perpendicular_to_the_wall_not_along_the_ray():
    # an elongated cavity with an 8 mm wall: rays from the centroid cross its long sides obliquely
    # (up to ~18 mm of myocardium along a ray), the wall is still 8 mm thick everywhere
    y, x = _disk_labels(140, (1.0, 1.0))
    to_axis = np.hypot(np.clip(np.abs(x) - 25, 0, None), y)
    labels = np.zeros((1, 140, 140), dtype=np.uint8)
    labels[0, to_axis <= 20] = 2
    labels[0, to_axis <= 12] = 3
    wall = wall_thickness_mm(labels, (1.0, 1.0, 8.0))
    assert wall["mean_mm"] == pytest.approx(8.0, abs=0.5)
    assert wall["max_mm"] == pytest.approx(8.0, abs=1.0)


def test_wall_thickness_finds_a_hypertrophic_septum():
    y, x = _disk_labels(140, (1.0, 1.0))
    rho = np.hypot(y, x)
    labels = np.zeros((2, 140, 140), dtype=np.uint8)
    labels[:, rho <= 28] = 2
    septum = (x < 0) & (np.abs(np.arctan2(y, -x)) < np.deg2rad(35)) & (rho <= 36)  # 16 mm over 70 degrees
    labels[:, septum] = 2
    labels[:, rho <= 20] = 3
    labels[1] = 0  # a slice without heart gives no value
    wall = wall_thickness_mm(labels, (1.0, 1.0, 8.0))
    assert wall["max_mm"] == pytest.approx(16.0, abs=1.0)
    assert 8.0 < wall["mean_mm"] < 10.5
    assert wall["per_slice_max_mm"][1] is None and wall["per_slice_mean_mm"][1] is None


def test_wall_thickness_ignores_papillary_muscles_and_detached_myocardium():
    y, x = _disk_labels(140, (1.0, 1.0))
    rho = np.hypot(y, x)
    labels = np.zeros((1, 140, 140), dtype=np.uint8)
    labels[0, rho <= 30] = 2
    labels[0, rho <= 20] = 3
    labels[0, (rho > 34) & (rho <= 38) & (x < 0)] = 2  # e.g. RV free wall mislabelled, not touching the LV
    labels[0, np.hypot(x - 10, y) <= 3] = 2  # a papillary muscle inside the cavity
    wall = wall_thickness_mm(labels, (1.0, 1.0, 8.0))
    assert wall["mean_mm"] == pytest.approx(10.0, abs=0.5)
    assert wall["max_mm"] == pytest.approx(10.0, abs=1.0)


def test_wall_rays_are_reused_only_for_the_same_label_map_and_spacing():
    labels = _ring(20, 30, (1.0, 1.0, 8.0))
    first = wall_rays_mm(labels, (1.0, 1.0))
    assert wall_rays_mm(labels.copy(), (1.0, 1.0)) is first  # same content: the rays are not measured again
    assert first[1] is not None and not first[1].flags.writeable  # shared rays cannot be changed by a caller
    thinner = _ring(25, 30, (1.0, 1.0, 8.0))  # same size and outline, a 5 mm wall
    other = wall_rays_mm(thinner, (1.0, 1.0))
    assert other is not first and np.nanmean(other[1]) == pytest.approx(5.0, abs=0.5)
    finer = wall_rays_mm(labels, (0.5, 0.5))
    assert np.nanmean(finer[1]) == pytest.approx(0.5 * np.nanmean(first[1]), rel=0.02)


def test_wall_thickness_is_none_without_myocardium():
    wall = wall_thickness_mm(np.zeros((2, 20, 20), dtype=np.uint8), (1.0, 1.0, 8.0))
    assert wall == {
        "max_mm": None,
        "mean_mm": None,
        "per_slice_max_mm": [None, None],
        "per_slice_mean_mm": [None, None],
    }


def test_wall_thickness_of_generated_heart_matches_its_construction(heart):
    # the generator's ED wall is 9 mm +- 8 % at the base and grows slowly towards the apex
    indices = compute_indices(heart.labels[0], heart.labels[heart.es_index], SPACING)
    assert 8.0 < indices["Mean wall thickness ED (mm)"] < 11.5
    assert indices["Mean wall thickness ED (mm)"] < indices["Max wall thickness ED (mm)"] < 15.0


# --------------------------------------------------------------------------------------------------
# end-diastole and end-systole


def test_end_diastole_and_systole_are_the_largest_and_smallest_lv_volume(heart):
    assert select_end_diastole_systole(heart.lv_volume_ml) == (heart.ed_index, heart.es_index)
    assert select_end_diastole_systole([50.0, 120.0, 80.0, 40.0, 60.0]) == (1, 3)
    with pytest.raises(CardiacInputError, match="0 frames"):
        select_end_diastole_systole([])
