"""``cardiac-train diagnosis``: the feature table of the ACDC training patients, cross-validation, model folder.

Features are measured on each patient's ED and ES label maps: the expert labels (``gt``) and, when a
segmentation model is given, the model's own segmentation of the same frames (``predicted``: the honest
input, as in use). Each table also holds the regional features of the ED-to-ES strain measured on the
same labels (:data:`~CardiacMTLLib.analysis.diagnosis.features.REGIONAL_FEATURES`). The 5-fold
cross-validation is stratified by group, uses the same folds for every feature set (the global features
of the classifier before strain, and those plus the regional ones) and reports accuracy, per-fold
accuracy and the confusion matrix for three set-ups:

- ``gt -> gt``: trained and tested on features of expert labels (the classifier's ceiling);
- ``gt -> predicted``: trained on expert-label features, tested on predicted-segmentation features, which is
  how the shipped classifier is used;
- ``predicted -> predicted``: trained and tested on predicted-segmentation features.

The shipped model folder holds the expert-label feature table of every patient and the manifest, whose
``default_feature_set`` is the feature set with the better mean ``gt -> predicted`` accuracy (all
features) over five cross-validations with different folds (the global set when they tie).
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.diagnosis.features import (
    FEATURE_SETS,
    TABLE_FEATURES,
    build_ensemble,
    diagnostic_features,
    feature_matrix,
    feature_names,
    read_feature_table,
)
from CardiacMTLLib.analysis.segment import segment_volume
from CardiacMTLLib.analysis.strain import measure_strain
from CardiacMTLLib.datasets.acdc import ed_es_frames, list_acdc_patients
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.acdc import read_acdc_info
from CardiacMTLLib.io.cine import read_cine, read_volume
from CardiacMTLLib.io.nifti import read_nifti_volume
from CardiacMTLLib.models.registry import load_model, resolve_model_dir, write_model_folder
from CardiacMTLLib.training.common import run_record
from CardiacMTLLib.types import ACDC_GROUP_TO_CLASS, CLASSES


@dataclass
class DiagnosisTrainingConfig:
    """What ``cardiac-train diagnosis`` is asked to do."""

    data: str | Path  # ACDC training folder (patientNNN/...)
    out: str | Path  # run folder (feature tables, cv_predictions.json, model/)
    segmentation_model: str | Path | None = None  # also measure features on this model's segmentations
    folds: int = 5
    seed: int = 0
    device: str = "auto"
    model_id: str = "acdc-features-ensemble"
    command: str | None = None  # the command line, recorded in the manifest


def patient_features(data_dir: Path, patient: str, model=None) -> dict:
    """Features of one ACDC patient from the expert labels, or from ``model``'s segmentation, with the
    regional features of the ED-to-ES strain of the same labels (RV insertion points detected on them)."""
    info = read_acdc_info(Path(data_dir) / patient / "Info.cfg")
    maps = []
    spacing = None
    numbers = []
    for number, image_path, label_path in ed_es_frames(data_dir, patient):
        numbers.append(number)
        if model is None:
            labels, spacing, _ = read_nifti_volume(label_path)
        else:
            image, spacing, _ = read_volume(image_path)
            labels = segment_volume(model, image, spacing)
        maps.append(np.asarray(labels, dtype=np.uint8))
    height = float(info["Height"]) if info.get("Height") else None
    weight = float(info["Weight"]) if info.get("Weight") else None
    cine = read_cine(Path(data_dir) / patient)
    ed, es = cine.frame_numbers.index(numbers[0]), cine.frame_numbers.index(numbers[1])
    labels = np.zeros(cine.data.shape, dtype=np.uint8)
    labels[ed], labels[es] = maps[0], maps[1]
    strain = measure_strain(cine, labels, ed, es, None, frame_indices=[ed, es])
    return diagnostic_features(maps[0], maps[1], spacing, height, weight, strain=strain)


def feature_table_text(patients: list[str], classes: list[str], rows: list[dict]) -> str:
    """The feature table as CSV text: ``patient,class,<features>`` (6 significant digits, empty if unknown)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["patient", "class", *TABLE_FEATURES])
    for patient, cls, row in zip(patients, classes, rows, strict=True):
        writer.writerow(
            [patient, cls] + ["" if row.get(n) is None else f"{row[n]:.6g}" for n in TABLE_FEATURES]
        )
    return out.getvalue()


def write_feature_table(path: Path, patients: list[str], classes: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        f.write(feature_table_text(patients, classes, rows))


def build_table(data_dir: Path, out_csv: Path, model=None, desc: str = "features") -> None:
    from tqdm import tqdm

    patients = list_acdc_patients(data_dir)
    rows, ids, classes = [], [], []
    for patient, group in tqdm(patients, desc=desc, unit="patient"):
        rows.append(patient_features(data_dir, patient, model))
        ids.append(patient)
        classes.append(ACDC_GROUP_TO_CLASS[group])
    write_feature_table(out_csv, ids, classes, rows)


def cross_validate(train_rows, test_rows, classes, names, folds: int = 5, seed: int = 0) -> dict:
    """Stratified k-fold: fit on ``train_rows`` of k-1 folds, predict ``test_rows`` of the held-out fold."""
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold

    x_train, x_test = feature_matrix(train_rows, names), feature_matrix(test_rows, names)
    y = np.array(classes)
    predictions = np.empty(len(y), dtype=object)
    per_fold = []
    # the folds depend on the classes and the seed only: every feature set is judged on the same folds
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros((len(y), 1)), y):
        model = build_ensemble(seed).fit(x_train[train_idx], y[train_idx])
        predictions[test_idx] = model.predict(x_test[test_idx])
        per_fold.append(round(float(np.mean(predictions[test_idx] == y[test_idx])), 4))
    matrix = confusion_matrix(y, predictions.astype(str), labels=list(CLASSES))
    return {
        "accuracy": round(float(np.mean(predictions == y)), 4),
        "correct": int(np.sum(predictions == y)),
        "patients": len(y),
        "per_fold_accuracy": per_fold,
        "confusion_matrix": {"rows_true_columns_predicted": list(CLASSES), "counts": matrix.tolist()},
        "predictions": predictions.astype(str).tolist(),
    }


def fold_patients(patients: list[str], classes: list[str], folds: int = 5, seed: int = 0) -> list[list[str]]:
    """The held-out patients of each fold of :func:`cross_validate` (recorded in the manifest)."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        [patients[i] for i in test_idx]
        for _, test_idx in splitter.split(np.zeros((len(classes), 1)), classes)
    ]


def confusion_text(result: dict) -> str:
    counts = result["confusion_matrix"]["counts"]
    lines = ["| true \\ predicted | " + " | ".join(CLASSES) + " |", "|---" * (len(CLASSES) + 1) + "|"]
    for cls, row in zip(CLASSES, counts, strict=True):
        lines.append(f"| {cls} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def feature_tables(config: DiagnosisTrainingConfig, run_dir: Path) -> dict:
    """``{"gt": table, "predicted": table}`` (:func:`read_feature_table`), each measured once into the run
    folder; ``predicted`` only with a segmentation model."""
    data_dir = Path(config.data)
    gt_csv = run_dir / "features_gt.csv"
    if not gt_csv.exists():
        build_table(data_dir, gt_csv, desc="features (expert labels)")
    tables = {"gt": read_feature_table(gt_csv)}
    if config.segmentation_model:
        pred_csv = run_dir / "features_predicted.csv"
        if not pred_csv.exists():
            model = load_model(config.segmentation_model, device=config.device)
            build_table(data_dir, pred_csv, model=model, desc="features (predicted segmentation)")
        tables["predicted"] = read_feature_table(pred_csv)
        if tables["predicted"][0] != tables["gt"][0]:
            raise CardiacInputError(f"{run_dir}: the two feature tables list different patients")
    return tables


def cross_validations(tables: dict, config: DiagnosisTrainingConfig) -> dict:
    """The cross-validation of every set-up (train -> test feature source) and feature set."""
    classes = tables["gt"][1]
    setups = [("gt -> gt", "gt", "gt")]
    if "predicted" in tables:
        setups += [
            ("gt -> predicted", "gt", "predicted"),
            ("predicted -> predicted", "predicted", "predicted"),
        ]
    results = {}
    variants = [
        (f"{body}{'' if feature_set == 'global' else ' + regional'}", feature_names(feature_set, flag))
        for feature_set in FEATURE_SETS
        for body, flag in (("all features", True), ("no body size", False))
    ]
    for name, train_src, test_src in setups:
        for variant, names in variants:
            result = cross_validate(
                tables[train_src][2], tables[test_src][2], classes, names, config.folds, config.seed
            )
            results[f"{name}, {variant}"] = result
            print(
                f"{name:24s} {variant:25s} accuracy {result['accuracy']:.3f} ({result['correct']}/{len(classes)})"
            )
    return results


def repeated_accuracy(tables: dict, config: DiagnosisTrainingConfig, repeats: int = 5) -> dict:
    """Accuracy of each feature set (all features) over ``repeats`` cross-validations with the seeds
    ``config.seed ...``: both sets on the same folds each time, trained on the expert-label features and
    tested on the predicted ones (on the expert ones without a segmentation model)."""
    test = "predicted" if "predicted" in tables else "gt"
    classes = tables["gt"][1]
    out = {"setup": f"gt -> {test}, all features", "seeds": [config.seed + i for i in range(repeats)]}
    for feature_set in FEATURE_SETS:
        names = feature_names(feature_set, True)
        out[feature_set] = [
            cross_validate(tables["gt"][2], tables[test][2], classes, names, config.folds, seed)["accuracy"]
            for seed in out["seeds"]
        ]
    return out


def choose_feature_set(repeated: dict) -> str:
    """The feature set of the shipped default: the better mean accuracy of :func:`repeated_accuracy`
    (one cross-validation moves by a patient or two with the folds); ``"global"`` when they tie."""
    return "regional" if np.mean(repeated["regional"]) > np.mean(repeated["global"]) else "global"


def segmentation_validation(
    tables: dict, config: DiagnosisTrainingConfig, feature_set: str = "global"
) -> dict | None:
    """Accuracy on the segmentation model's own held-out patients: the only predicted features it never
    trained on (trained on the expert-label features of the others)."""
    if not config.segmentation_model:
        return None
    manifest = json.loads((resolve_model_dir(config.segmentation_model) / "manifest.json").read_text())
    held_out = set(manifest.get("training", {}).get("validation_patients", []))
    if not held_out:
        return None
    patients, classes, gt_rows = tables["gt"]
    idx_val = [i for i, p in enumerate(patients) if p in held_out]
    idx_train = [i for i, p in enumerate(patients) if p not in held_out]
    names = feature_names(feature_set, True)
    model = build_ensemble(config.seed).fit(
        feature_matrix([gt_rows[i] for i in idx_train], names), [classes[i] for i in idx_train]
    )
    pred_rows = tables["predicted"][2]
    predicted = model.predict(feature_matrix([pred_rows[i] for i in idx_val], names))
    truth = [classes[i] for i in idx_val]
    validation = {
        "patients": [patients[i] for i in idx_val],
        "truth": truth,
        "predicted": predicted.tolist(),
        "accuracy": round(float(np.mean(predicted == np.array(truth))), 4),
    }
    print(
        f"segmentation-validation patients (never seen by either model): accuracy {validation['accuracy']:.3f}"
    )
    return validation


def train_diagnosis(config: DiagnosisTrainingConfig) -> dict:
    """Feature tables, the cross-validations and the model folder ``OUT/model``; returns its manifest."""
    data_dir, run_dir = Path(config.data), Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tables = feature_tables(config, run_dir)
    patients, classes, gt_rows = tables["gt"]
    results = cross_validations(tables, config)
    repeated = repeated_accuracy(tables, config)
    feature_set = choose_feature_set(repeated)
    print(
        f"repeated cross-validation ({repeated['setup']}, seeds {repeated['seeds']}): "
        + ", ".join(f"{fs} {np.mean(repeated[fs]):.3f} {repeated[fs]}" for fs in FEATURE_SETS)
        + f"; default feature set: {feature_set}"
    )
    validation = segmentation_validation(tables, config, feature_set)
    manifest = {
        "model_id": config.model_id,
        "version": time.strftime("%Y%m%d"),
        "task": "diagnosis",
        "classes": list(CLASSES),
        "method": "soft-voting ensemble (random forest 150, extra trees 150, logistic regression) "
        "fitted on the feature table when loaded",
        "table": "features.csv",
        "features": {
            f"{body}{'' if fs == 'global' else ' + regional'}": list(feature_names(fs, flag))
            for fs in FEATURE_SETS
            for body, flag in (("all", True), ("no body size", False))
        },
        "default_feature_set": feature_set,
        "seed": config.seed,
        "training": {
            "data": str(data_dir),
            "patients": len(patients),
            "per_class": {c: classes.count(c) for c in CLASSES},
            "feature_source": "expert labels at ED and ES; regional features from the ED-to-ES strain "
            "of the same labels",
            **run_record(config.command),
        },
        "cross_validation": {
            "folds": config.folds,
            "stratified_by": "class",
            "results": {
                k: {kk: vv for kk, vv in v.items() if kk != "predictions"} for k, v in results.items()
            },
            "repeated": repeated,
        },
        "segmentation_validation_patients": validation,
        "folds": fold_patients(patients, classes, config.folds, config.seed),
        "seconds": round(time.time() - t0, 1),
    }
    table = feature_table_text(patients, classes, gt_rows)
    model_dir = write_model_folder(run_dir / "model", None, manifest, {"features.csv": table.encode()})
    per_patient = {k: dict(zip(patients, v["predictions"], strict=True)) for k, v in results.items()}
    (run_dir / "cv_predictions.json").write_text(
        json.dumps({"truth": dict(zip(patients, classes, strict=True)), **per_patient}, indent=2)
    )
    for key, result in results.items():
        print(f"\n{key}: accuracy {result['accuracy']:.3f}\n{confusion_text(result)}")
    print(f"\nmodel written to {model_dir}")
    return manifest
