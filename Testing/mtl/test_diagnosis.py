"""Diagnosis: the criteria trace on label maps built to sit clearly inside each class, probabilities,
missing height/weight, and the shipped feature-based classifier."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from CardiacMTLLib.analysis.diagnosis.classifiers import diagnose, load_classifier
from CardiacMTLLib.analysis.diagnosis.criteria import (
    REGIONAL_INDEX,
    criteria_summary,
    criteria_trace,
    judge_criterion,
)
from CardiacMTLLib.analysis.diagnosis.features import (
    ALL_FEATURES,
    DEFAULT_CLASSIFIER,
    REGIONAL_FEATURES,
    SHAPE_FEATURES,
    TABLE_FEATURES,
    FeatureClassifier,
    diagnostic_features,
)
from CardiacMTLLib.analysis.indices import compute_indices
from CardiacMTLLib.errors import CardiacInputError, CardiacModelError
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.types import CLASSES

# Short stacks, few frames, no sub-slice rendering: the labels are what these tests need.
GEOMETRY = {"num_frames": 8, "shape": (128, 128, 9), "spacing_mm": (1.6, 1.6, 10.0), "subslices": 1}
# (generator parameters, how the RV is changed afterwards) chosen to sit clearly inside each class
CASES = {
    "NOR": ({"ejection_fraction": 0.62, "lv_radius_mm": 23.0, "wall_thickness_mm": 8.0}, None),
    "MINF": ({"ejection_fraction": 0.28, "lv_radius_mm": 26.0, "wall_thickness_mm": 8.0}, None),
    "DCM": ({"ejection_fraction": 0.15, "lv_radius_mm": 42.0, "wall_thickness_mm": 8.0}, None),
    "HCM": ({"ejection_fraction": 0.72, "lv_radius_mm": 20.0, "wall_thickness_mm": 19.0}, None),
    "ARV": ({"ejection_fraction": 0.62, "lv_radius_mm": 23.0, "wall_thickness_mm": 8.0}, "dilate"),
}


def _enlarge_rv(ed: np.ndarray, es: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A dilated, hardly contracting RV: grow the RV cavity into the background and keep it at ES."""
    ed, es = ed.copy(), es.copy()
    for k in range(ed.shape[0]):
        rv = ed[k] == 1
        if rv.any():
            grown = ndimage.binary_dilation(rv, iterations=14) & (ed[k] == 0)
            ed[k][grown] = 1
            es[k][(ed[k] == 1) & (es[k] == 0)] = 1
    return ed, es


@pytest.fixture(scope="module")
def class_cases():
    cases = {}
    for cls, (params, change) in CASES.items():
        case = generate_synthetic_cine(seed=3, noise_std=0.0, **GEOMETRY, **params)
        ed, es = case.labels[case.ed_index], case.labels[case.es_index]
        if change == "dilate":
            ed, es = _enlarge_rv(ed, es)
        spacing = case.cine.spacing_mm
        indices = compute_indices(ed, es, spacing, height_cm=175.0, weight_kg=75.0)
        cases[cls] = {"ed": ed, "es": es, "spacing": spacing, "indices": indices}
    return cases


def _status(trace, cls):
    # the regional finding needs strain, which these label-only cases have not
    return [t["status"] for t in trace if t["class"] == cls and t["index"] != REGIONAL_INDEX]


@pytest.mark.parametrize("cls", CLASSES)
def test_criteria_of_the_own_class_are_met(class_cases, cls):
    trace = criteria_trace(class_cases[cls]["indices"])
    statuses = _status(trace, cls)
    if cls == "ARV":  # one of the two ARV criteria suffices; this RV fails both
        assert statuses == ["met", "met"], trace
    else:
        assert statuses and all(s == "met" for s in statuses), [t for t in trace if t["class"] == cls]


@pytest.mark.parametrize(
    "cls, other",
    [
        ("NOR", "DCM"),
        ("NOR", "MINF"),
        ("DCM", "NOR"),
        ("DCM", "HCM"),
        ("HCM", "NOR"),
        ("HCM", "DCM"),
        ("ARV", "NOR"),
    ],
)
def test_a_class_fails_the_criteria_of_another(class_cases, cls, other):
    statuses = _status(criteria_trace(class_cases[cls]["indices"]), other)
    assert "not met" in statuses


def test_criteria_trace_lists_index_value_rule_and_status(class_cases):
    trace = criteria_trace(class_cases["DCM"]["indices"])
    lvef = next(t for t in trace if t["class"] == "DCM" and t["index"] == "LVEF (%)")
    assert lvef["value"] == class_cases["DCM"]["indices"]["LVEF (%)"]
    assert lvef["rule"] == "< 40" and lvef["status"] == "met"
    assert str(lvef["value"]) in lvef["explanation"].replace(f"{lvef['value']:g}", str(lvef["value"]))


def test_missing_height_and_weight_leaves_indexed_criteria_not_judged(class_cases):
    case = class_cases["DCM"]
    indices = compute_indices(case["ed"], case["es"], case["spacing"])  # no height, no weight
    with pytest.raises(CardiacInputError, match="height and weight"):
        judge_criterion(indices, "LVEDVi (mL/m2)", ">", 100.0)
    trace = criteria_trace(indices)
    indexed = [t for t in trace if t["index"] in ("LVEDVi (mL/m2)", "RVEDVi (mL/m2)", "LVMi (g/m2)")]
    assert indexed and all(t["status"] == "not judged" for t in indexed)
    assert all("height and weight" in t["explanation"] for t in indexed)
    # the criteria that need no body size are still judged
    assert next(t for t in trace if t["class"] == "DCM" and t["index"] == "LVEF (%)")["status"] == "met"


def test_sex_dependent_limit_between_the_two_is_not_guessed():
    status, why = judge_criterion({"LVEDVi (mL/m2)": 85.0}, "LVEDVi (mL/m2)", "<", (90.0, 80.0))
    assert status == "not judged" and "sex" in why
    assert judge_criterion({"LVEDVi (mL/m2)": 85.0}, "LVEDVi (mL/m2)", "<", (90.0, 80.0), sex="M")[0] == "met"
    assert judge_criterion({"LVEDVi (mL/m2)": 70.0}, "LVEDVi (mL/m2)", "<", (90.0, 80.0))[0] == "met"


def test_features_follow_the_labels(class_cases):
    case = class_cases["HCM"]
    features = diagnostic_features(case["ed"], case["es"], case["spacing"], 175.0, 75.0)
    assert set(features) == set(TABLE_FEATURES)
    assert all(features[n] is None for n in REGIONAL_FEATURES)  # no strain given: not measured
    assert features["LVEDV"] == pytest.approx(case["indices"]["LVEDV (mL)"], abs=0.01)
    assert features["LVEF"] == pytest.approx(case["indices"]["LVEF (%)"], abs=0.01)
    assert features["WT_max_ED"] == pytest.approx(case["indices"]["Max wall thickness ED (mm)"], abs=0.01)
    # the cheap per-slice mean thickness agrees with the ray-based one within a couple of millimetres
    assert features["WT_slice_mean_max_ED"] > 14.0
    assert features["WT_thickening"] > 1.0  # the wall thickens in systole
    no_body = diagnostic_features(case["ed"], case["es"], case["spacing"])
    assert no_body["BSA"] is None and no_body["LVEDVi"] is None and no_body["LVEDV"] == features["LVEDV"]


def test_features_refuse_a_segmentation_without_a_ventricle(class_cases):
    case = class_cases["NOR"]
    ed = case["ed"].copy()
    ed[ed == 1] = 0
    with pytest.raises(CardiacInputError, match="lacks a structure"):
        diagnostic_features(ed, case["es"], case["spacing"])


@pytest.fixture(scope="module")
def classifier():
    if not (DEFAULT_CLASSIFIER / "manifest.json").exists():
        pytest.fail(f"the shipped diagnosis model is missing: {DEFAULT_CLASSIFIER}")
    return load_classifier()


@pytest.mark.parametrize("cls", CLASSES)
def test_probabilities_sum_to_one_and_name_the_model(class_cases, classifier, cls):
    case = class_cases[cls]
    features = diagnostic_features(case["ed"], case["es"], case["spacing"], 175.0, 75.0)
    result = diagnose(case["indices"], features, classifier=classifier)
    assert set(result["probabilities"]) == set(CLASSES)
    assert math.isclose(sum(result["probabilities"].values()), 1.0, abs_tol=1e-3)
    assert all(0.0 <= p <= 1.0 for p in result["probabilities"].values())
    assert result["class"] == max(result["probabilities"], key=result["probabilities"].get)
    assert result["model"].startswith(classifier.model_id)
    assert result["features_used"].startswith("all features")
    assert {t["class"] for t in result["criteria"]} == set(CLASSES)


@pytest.mark.parametrize("cls", ["DCM", "HCM"])
def test_unmistakable_cases_get_their_class(class_cases, classifier, cls):
    case = class_cases[cls]
    features = diagnostic_features(case["ed"], case["es"], case["spacing"], 175.0, 75.0)
    assert diagnose(case["indices"], features, classifier=classifier)["class"] == cls


def test_without_body_size_the_shape_only_variant_is_used_and_said(class_cases, classifier):
    case = class_cases["DCM"]
    indices = compute_indices(case["ed"], case["es"], case["spacing"])
    features = diagnostic_features(case["ed"], case["es"], case["spacing"])
    result = diagnose(indices, features, classifier=classifier)
    assert result["features_used"].startswith("without height, weight and BSA")
    assert "LVEDVi (mL/m2)" in result["not_judged"]
    assert math.isclose(sum(result["probabilities"].values()), 1.0, abs_tol=1e-3)


def test_shipped_classifier_records_its_cross_validation(classifier):
    manifest = classifier.manifest
    assert manifest["task"] == "diagnosis" and manifest["classes"] == list(CLASSES)
    assert manifest["features"]["no body size"] == list(SHAPE_FEATURES)
    assert manifest["features"]["all + regional"] == list(ALL_FEATURES + REGIONAL_FEATURES)
    results = manifest["cross_validation"]["results"]
    assert results["gt -> gt, all features"]["patients"] == 100
    # both feature sets on the same folds, the default the better of the two from predicted labels
    regional = results["gt -> predicted, all features + regional"]
    today = results["gt -> predicted, all features"]
    assert len(regional["per_fold_accuracy"]) == len(today["per_fold_accuracy"]) == 5
    repeated = manifest["cross_validation"]["repeated"]
    assert repeated["regional"][0] == regional["accuracy"] and repeated["global"][0] == today["accuracy"]
    better = "regional" if np.mean(repeated["regional"]) > np.mean(repeated["global"]) else "global"
    assert manifest["default_feature_set"] == better == classifier.feature_set
    assert sorted(p for fold in manifest["folds"] for p in fold) == sorted(
        f"patient{i:03d}" for i in range(1, 101)
    )
    assert (DEFAULT_CLASSIFIER / "MODEL_CARD.md").exists()


def test_missing_or_incomplete_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CardiacModelError, match="manifest.json"):
        FeatureClassifier(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"table": "features.csv"}))
    with pytest.raises(CardiacModelError, match="features.csv"):
        FeatureClassifier(tmp_path)
    header = "patient,class," + ",".join(ALL_FEATURES)
    row = "patient001,DCM," + ",".join("1" for _ in ALL_FEATURES[:-1]) + ","
    (tmp_path / "features.csv").write_text(header + "\n" + row + "\n")
    with pytest.raises(CardiacModelError, match="missing values"):
        FeatureClassifier(tmp_path)


def test_feature_table_matches_the_acdc_expert_labels(acdc_dir):
    """The shipped table's row for one patient is what the features of its expert labels give."""
    from CardiacMTLLib.analysis.diagnosis.features import read_feature_table
    from CardiacMTLLib.training.diagnosis import patient_features

    patients, classes, rows = read_feature_table(Path(DEFAULT_CLASSIFIER) / "features.csv")
    assert len(patients) == 100 and {c: classes.count(c) for c in CLASSES} == dict.fromkeys(CLASSES, 20)
    i = patients.index("patient021")
    fresh = patient_features(acdc_dir, "patient021")
    for name in ("LVEDV", "LVEF", "RVEDV", "LVMi", "WT_max_ED"):
        assert fresh[name] == pytest.approx(rows[i][name], rel=1e-4)


def _strain_stub(akinetic, hypokinetic=()):
    return {
        "akinetic_segments": list(akinetic),
        "hypokinetic_segments": list(hypokinetic),
        "rule": "the rule",
    }


def test_criteria_trace_adds_the_regional_finding_after_the_minf_ejection_fraction(class_cases):
    indices = class_cases["MINF"]["indices"]
    trace = criteria_trace(indices, strain=_strain_stub([9, 10], [8]))
    minf = [t for t in trace if t["class"] == "MINF"]
    assert [t["index"] for t in minf] == ["LVEF (%)", REGIONAL_INDEX]
    assert minf[1]["status"] == "met" and minf[1]["value"] == 2
    assert "segments 9, 10" in minf[1]["explanation"] and "the rule" in minf[1]["note"]
    assert criteria_summary(trace)["MINF"] == "2/2 met"
    still = criteria_trace(indices, strain=_strain_stub([]))
    assert next(t for t in still if t["index"] == REGIONAL_INDEX)["status"] == "not met"
    unknown = next(t for t in criteria_trace(indices) if t["index"] == REGIONAL_INDEX)
    assert unknown["status"] == "not judged" and "strain" in unknown["explanation"]


def test_both_feature_sets_are_available_and_say_which_ran(class_cases):
    case = class_cases["DCM"]
    features = diagnostic_features(case["ed"], case["es"], case["spacing"], 175.0, 75.0)
    regional = FeatureClassifier(None, "regional")
    today = FeatureClassifier(None, "global")
    assert today.predict(features)["features_used"] == "all features"
    # without strain the regional classifier falls back on the global features, and says so
    fallback = regional.predict(features)
    assert fallback["features_used"] == "all features, without regional strain (not measured)"
    assert fallback["probabilities"] == pytest.approx(today.predict(features)["probabilities"])
    with_strain = dict(features, **{n: 1.0 for n in REGIONAL_FEATURES})
    assert (
        regional.predict(with_strain)["features_used"] == "all features, with regional strain and thickening"
    )
    assert load_classifier("features-global").feature_set == "global"
    assert load_classifier("features-regional").feature_set == "regional"


def test_analysis_hands_its_strain_to_the_classifier_and_the_trace():
    from CardiacMTLLib.pipeline import measure
    from CardiacMTLLib.synthetic.motion import generate_motion_cine

    case = generate_motion_cine(
        seed=4, akinetic_segment=9, num_frames=6, shape=(96, 96, 6), spacing_mm=(1.6, 1.6, 9.0)
    )
    case.cine.height_cm, case.cine.weight_kg = 175.0, 75.0
    result = measure(
        case.cine, case.labels, {"model_id": "truth"}, classifier=load_classifier("features-regional")
    )
    assert result.strain is not None and result.strain.akinetic_segments == [9]
    diagnosis = result.diagnosis
    assert diagnosis["features_used"] == "all features, with regional strain and thickening"
    assert diagnosis["model"].endswith("(regional features)")
    finding = next(t for t in diagnosis["criteria"] if t["index"] == REGIONAL_INDEX)
    assert finding["status"] == "met" and finding["value"] == 1 and "segments 9" in finding["explanation"]
