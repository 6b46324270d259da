"""Diagnosis of NOR / MINF / DCM / HCM / ARV from the segmentation: features, classifier, criteria trace.

The feature-based approach of the ACDC challenge winners: clinical features measured on the ED and ES
label maps (volumes, ejection fractions, mass, ratios, wall-thickness statistics per slice, BSA-indexed
values, height and weight) and a scikit-learn ensemble trained on the ACDC training set. Beside the
learned probabilities, :func:`criteria_trace` checks the challenge's defining indices (Bernard et al.
2018, Table 1 of the thesis in the seeds) for every class, so a clinician sees why: each criterion is
``met``, ``not met`` or ``not judged`` (with the reason, e.g. an indexed volume without height and
weight, or a sex-dependent threshold for a patient whose sex is not recorded).

The shipped classifier is the feature table of the 100 ACDC training patients (measured on the expert
labels) plus the ensemble's recipe; it is fitted when first used (under a second, deterministic), which
keeps the shipped files plain CSV/JSON instead of a pickle tied to one scikit-learn version. When height
or weight is missing, the variant trained without body-size features is used and the result says so.
Numpy, scipy and scikit-learn only (no torch).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.diagnosis.fitted import fit_key, load_fitted, save_fitted
from CardiacMTLLib.analysis.indices import (
    MYOCARDIAL_DENSITY_G_PER_ML,
    bsa_dubois,
    label_volumes_ml,
    wall_thickness_mm,
)
from CardiacMTLLib.analysis.masks import fill_holes
from CardiacMTLLib.analysis.strain import regional_strain_features
from CardiacMTLLib.errors import CardiacInputError, CardiacModelError
from CardiacMTLLib.models.registry import WEIGHTS_DIR
from CardiacMTLLib.types import CLASSES, Label

# Features that need neither height nor weight.
SHAPE_FEATURES = (
    "LVEDV",
    "LVESV",
    "LVSV",
    "LVEF",
    "RVEDV",
    "RVESV",
    "RVSV",
    "RVEF",
    "LVM_ED",
    "LVM_ES",
    "RVEDV/LVEDV",
    "RVESV/LVESV",
    "LVM/LVEDV",
    "LVM_ES/LVESV",
    "RVEF-LVEF",
    "WT_max_ED",
    "WT_mean_ED",
    "WT_slice_max_mean_ED",
    "WT_slice_max_std_ED",
    "WT_slice_mean_max_ED",
    "WT_slice_mean_std_ED",
    "WT_mean_ES",
    "WT_thickening",
    "WT_thickening_min",
)
BODY_FEATURES = ("Height", "Weight", "BSA", "LVEDVi", "LVESVi", "RVEDVi", "RVESVi", "LVMi")
ALL_FEATURES = SHAPE_FEATURES + BODY_FEATURES
# Regional features of the ED-to-ES strain and thickening per AHA segment
# (:func:`~CardiacMTLLib.analysis.strain.regional_strain_features`): what tells an infarct (some segments
# still, the others contracting: a large spread relative to the mean) from a dilated cardiomyopathy (all
# weak alike). None of them depends on a threshold, so a cross-validation of the classifier cannot
# borrow from the patients the wall-motion rule was tuned on (the akinetic count was tried too and did
# no better: see the model card).
REGIONAL_FEATURES = (
    "GCS",
    "segmental_cs_sd",
    "segmental_cs_cv",
    "weakest_segment_cs_share",
    "thickening_sd_pct",
    "thickening_cv",
)
TABLE_FEATURES = ALL_FEATURES + REGIONAL_FEATURES
# The feature sets of a classifier: "global" (volumes, ejection fractions, mass, wall thickness: the
# classifier before strain) and "regional" (the same plus REGIONAL_FEATURES).
FEATURE_SETS = ("global", "regional")

DEFAULT_CLASSIFIER = WEIGHTS_DIR / "acdc_features_classifier"


def _slice_mean_thickness_mm(labels: np.ndarray, spacing_mm) -> list[float | None]:
    """Mean myocardial thickness per slice, myocardial area over the mean of the endo- and epicardial
    perimeters: cheap enough to run at ES too (the ray method of the indices is for reporting)."""

    sx, sy = float(spacing_mm[0]), float(spacing_mm[1])
    out: list[float | None] = []
    for k in range(labels.shape[0]):
        cavity = fill_holes(labels[k] == Label.LV_CAVITY)
        myo = (labels[k] == Label.LV_MYOCARDIUM) & ~cavity
        if cavity.sum() < 5 or myo.sum() < 5:
            out.append(None)
            continue
        heart = cavity | myo

        def perimeter(mask):
            # length of the pixel-edge boundary, corrected by pi/4 for a staircase around a smooth curve
            m = np.pad(mask, 1).astype(np.int8)
            vertical = np.abs(np.diff(m, axis=0)).sum() * sx
            horizontal = np.abs(np.diff(m, axis=1)).sum() * sy
            return (vertical + horizontal) * math.pi / 4

        mean_perimeter = 0.5 * (perimeter(cavity) + perimeter(heart))
        out.append(float(myo.sum() * sx * sy / mean_perimeter))
    return out


def diagnostic_features(
    ed_labels: np.ndarray,
    es_labels: np.ndarray,
    spacing_mm,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    wall_ed: dict | None = None,
    strain=None,
) -> dict[str, float | None]:
    """The classifier's features of one ED/ES pair of ``(slices, rows, cols)`` label maps.

    ``wall_ed`` is :func:`~CardiacMTLLib.indices.wall_thickness_mm` of the ED labels when the caller
    already has it. Body-size features are ``None`` without height and weight; the regional features
    come from ``strain`` (a :class:`~CardiacMTLLib.analysis.strain.StrainResult` of the same labels) and
    are ``None`` without it.
    """
    ed, es = label_volumes_ml(ed_labels, spacing_mm), label_volumes_ml(es_labels, spacing_mm)
    if ed["LV"] <= 0 or ed["RV"] <= 0 or ed["Myo"] <= 0:
        raise CardiacInputError(
            "the end-diastolic segmentation lacks a structure (LV cavity, RV cavity or myocardium): "
            f"volumes {ed}; no diagnosis can be made from it"
        )
    wall = wall_ed if wall_ed is not None else wall_thickness_mm(ed_labels, spacing_mm)
    slice_max = np.array([v for v in wall["per_slice_max_mm"] if v is not None], dtype=float)
    slice_mean = np.array([v for v in wall["per_slice_mean_mm"] if v is not None], dtype=float)
    mean_ed = _slice_mean_thickness_mm(ed_labels, spacing_mm)
    mean_es = _slice_mean_thickness_mm(es_labels, spacing_mm)
    ratios = [b / a for a, b in zip(mean_ed, mean_es, strict=True) if a and b]
    es_values = [v for v in mean_es if v is not None]
    lvm_ed, lvm_es = ed["Myo"] * MYOCARDIAL_DENSITY_G_PER_ML, es["Myo"] * MYOCARDIAL_DENSITY_G_PER_ML
    lvef = 100.0 * (ed["LV"] - es["LV"]) / ed["LV"]
    rvef = 100.0 * (ed["RV"] - es["RV"]) / ed["RV"]
    features: dict[str, float | None] = {
        "LVEDV": ed["LV"],
        "LVESV": es["LV"],
        "LVSV": ed["LV"] - es["LV"],
        "LVEF": lvef,
        "RVEDV": ed["RV"],
        "RVESV": es["RV"],
        "RVSV": ed["RV"] - es["RV"],
        "RVEF": rvef,
        "LVM_ED": lvm_ed,
        "LVM_ES": lvm_es,
        "RVEDV/LVEDV": ed["RV"] / ed["LV"],
        "RVESV/LVESV": es["RV"] / max(es["LV"], 1e-3),
        "LVM/LVEDV": lvm_ed / ed["LV"],
        "LVM_ES/LVESV": lvm_es / max(es["LV"], 1e-3),
        "RVEF-LVEF": rvef - lvef,
        "WT_max_ED": wall["max_mm"],
        "WT_mean_ED": wall["mean_mm"],
        "WT_slice_max_mean_ED": float(slice_max.mean()) if slice_max.size else None,
        "WT_slice_max_std_ED": float(slice_max.std()) if slice_max.size else None,
        "WT_slice_mean_max_ED": float(slice_mean.max()) if slice_mean.size else None,
        "WT_slice_mean_std_ED": float(slice_mean.std()) if slice_mean.size else None,
        "WT_mean_ES": float(np.mean(es_values)) if es_values else None,
        "WT_thickening": float(np.mean(ratios)) if ratios else None,
        "WT_thickening_min": float(np.min(ratios)) if ratios else None,
    }
    bsa = bsa_dubois(height_cm, weight_kg) if height_cm is not None and weight_kg is not None else None
    features.update(
        {
            "Height": height_cm,
            "Weight": weight_kg,
            "BSA": bsa,
            "LVEDVi": ed["LV"] / bsa if bsa else None,
            "LVESVi": es["LV"] / bsa if bsa else None,
            "RVEDVi": ed["RV"] / bsa if bsa else None,
            "RVESVi": es["RV"] / bsa if bsa else None,
            "LVMi": lvm_ed / bsa if bsa else None,
        }
    )
    regional = regional_strain_features(strain) if strain is not None else {}
    features.update({name: regional.get(name) for name in REGIONAL_FEATURES})
    return {k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in features.items()}


# --- the classifier ---------------------------------------------------------------------------------------


def build_ensemble(seed: int = 0):
    """The scikit-learn ensemble: soft vote of a random forest, extra trees and a logistic regression."""
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return VotingClassifier(
        estimators=[
            ("rf", RandomForestClassifier(n_estimators=150, min_samples_leaf=1, random_state=seed)),
            ("et", ExtraTreesClassifier(n_estimators=150, min_samples_leaf=1, random_state=seed)),
            ("lr", make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))),
        ],
        voting="soft",
    )


def read_feature_table(path: str | Path) -> tuple[list[str], list[str], list[dict[str, float | None]]]:
    """``(patients, classes, feature rows)`` of a feature table CSV (``patient,class,<features>``)."""
    path = Path(path)
    if not path.exists():
        raise CardiacModelError(f"{path}: missing feature table")
    patients, classes, rows = [], [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            patients.append(row.pop("patient"))
            classes.append(row.pop("class"))
            rows.append({k: (float(v) if v not in ("", None) else None) for k, v in row.items()})
    return patients, classes, rows


def feature_matrix(rows: list[dict], names: tuple[str, ...]) -> np.ndarray:
    matrix = np.array([[np.nan if r.get(n) is None else r[n] for n in names] for r in rows], dtype=float)
    return matrix


def feature_names(feature_set: str, body_size: bool) -> tuple[str, ...]:
    """The features of one variant: ``feature_set`` in :data:`FEATURE_SETS`, with or without body size."""
    if feature_set not in FEATURE_SETS:
        raise CardiacInputError(f"feature set must be one of {FEATURE_SETS}, got {feature_set!r}")
    names = ALL_FEATURES if body_size else SHAPE_FEATURES
    return names + (REGIONAL_FEATURES if feature_set == "regional" else ())


class FeatureClassifier:
    """The shipped feature-based classifier: fits the ensemble on the shipped feature table when built.

    ``feature_set`` is ``"global"`` (the features before strain) or ``"regional"`` (with the regional
    strain and thickening); ``None`` takes the manifest's ``default_feature_set`` (the better of the two
    by cross-validation), ``"global"`` for a folder that has no regional columns.
    """

    def __init__(self, model_dir: str | Path | None = None, feature_set: str | None = None):
        self.model_dir = Path(model_dir) if model_dir is not None else DEFAULT_CLASSIFIER
        manifest_path = self.model_dir / "manifest.json"
        if not manifest_path.exists():
            raise CardiacModelError(f"{manifest_path}: missing; the diagnosis model folder needs it")
        self.manifest = json.loads(manifest_path.read_text())
        self.model_id = self.manifest.get("model_id", "acdc-features-ensemble")
        self.version = self.manifest.get("version", "unknown")
        self._table = self.model_dir / self.manifest.get("table", "features.csv")
        _, self._classes, self._rows = read_feature_table(self._table)
        self._seed = int(self.manifest.get("seed", 0))
        self.feature_set = feature_set or self.manifest.get("default_feature_set", "global")
        if self.feature_set not in FEATURE_SETS:
            raise CardiacModelError(
                f"{manifest_path}: feature set must be one of {FEATURE_SETS}, got {self.feature_set!r}"
            )
        for body_size in (True, False):
            if np.isnan(feature_matrix(self._rows, feature_names(self.feature_set, body_size))).any():
                raise CardiacModelError(
                    f"{self.model_dir}: the feature table has missing values for the "
                    f"{self.feature_set} features"
                )
        self._models: dict = {}

    def _model(self, names: tuple[str, ...]):
        """The ensemble of one feature list, fitted on first use (well under a second) and kept in the
        user's cache folder for the next analyses (:mod:`~CardiacMTLLib.analysis.diagnosis.fitted`)."""
        if names not in self._models:
            try:
                key = fit_key(self._table, build_ensemble, self._seed, names)
            except (OSError, TypeError):  # no source to hash (a frozen build): fit every time
                key = None
            model = load_fitted(key) if key else None
            if model is None:
                model = build_ensemble(self._seed).fit(feature_matrix(self._rows, names), self._classes)
                if key:
                    save_fitted(key, model)
            self._models[names] = model
        return self._models[names]

    def fit_all(self) -> None:
        """Fit every variant now (a batch worker pays for them once, before its first study)."""
        sets = ("global", "regional") if self.feature_set == "regional" else ("global",)
        for feature_set in sets:
            for body_size in (True, False):
                self._model(feature_names(feature_set, body_size))

    def predict(self, features: dict) -> dict:
        """Class, probabilities (in :data:`CLASSES` order, summing to one) and the variant used: without
        height and weight the variant without body size, and without strain (or with the ``"global"``
        set) the variant without the regional features."""
        body_size = all(features.get(n) is not None for n in BODY_FEATURES)
        regional = self.feature_set == "regional" and all(
            features.get(n) is not None for n in REGIONAL_FEATURES
        )
        names = feature_names("regional" if regional else "global", body_size)
        missing = [n for n in names if features.get(n) is None]
        if missing:
            raise CardiacInputError(f"cannot classify: features {missing} could not be measured")
        model = self._model(names)
        proba = model.predict_proba(feature_matrix([features], names))[0]
        by_class = dict(zip(model.classes_, proba, strict=True))
        probabilities = {c: float(by_class.get(c, 0.0)) for c in CLASSES}
        total = sum(probabilities.values())
        probabilities = {c: p / total for c, p in probabilities.items()}
        used = "all features" if body_size else "without height, weight and BSA"
        if regional:
            used += ", with regional strain and thickening"
        elif self.feature_set == "regional":
            used += ", without regional strain (not measured)"
        return {
            "class": max(probabilities, key=probabilities.get),
            "probabilities": probabilities,
            "features_used": used,
        }
