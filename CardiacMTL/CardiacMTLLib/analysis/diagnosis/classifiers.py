"""Choosing the diagnosis model (feature ensemble or 3D DenseNet) and making the ``diagnosis`` block of a result."""

from __future__ import annotations

import json
from pathlib import Path

from CardiacMTLLib.analysis.diagnosis.criteria import criteria_summary, criteria_trace
from CardiacMTLLib.analysis.diagnosis.densenet import load_densenet_classifier
from CardiacMTLLib.analysis.diagnosis.features import DEFAULT_CLASSIFIER, FeatureClassifier
from CardiacMTLLib.errors import CardiacModelError
from CardiacMTLLib.models.registry import load_once
from CardiacMTLLib.types import CLASS_NAMES

# Names of the shipped feature classifier's variants: the default (the better by cross-validation, as
# its manifest says), with the regional strain and thickening, and the global features only (the
# classifier before strain).
FEATURE_CLASSIFIERS = {"features": None, "features-regional": "regional", "features-global": "global"}


def load_classifier(model_dir: str | Path | None = None, device: str = "auto"):
    """The diagnosis model, loaded once: the feature-based ensemble (default, ``"features"``; its
    variants ``"features-regional"`` and ``"features-global"``), the multi-task 3D DenseNet
    (``"densenet"``, on ``device``), or a model folder of either kind."""
    if model_dir is None or (isinstance(model_dir, str) and model_dir in FEATURE_CLASSIFIERS):
        feature_set = FEATURE_CLASSIFIERS[model_dir or "features"]
        return load_once(
            f"diagnosis-features-{feature_set or 'default'}",
            DEFAULT_CLASSIFIER,
            "cpu",
            "fp32",
            lambda: FeatureClassifier(None, feature_set),
        )
    path = DEFAULT_CLASSIFIER.parent / "acdc_densenet3d" if model_dir == "densenet" else Path(model_dir)
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        raise CardiacModelError(f"{manifest_path}: missing; not a diagnosis model folder")
    if json.loads(manifest_path.read_text()).get("network") == "MultiTaskDenseNet3D":
        return load_densenet_classifier(path, device)
    return load_once("diagnosis-features", path, "cpu", "fp32", lambda: FeatureClassifier(path))


def diagnose(
    indices: dict,
    features: dict,
    classifier: FeatureClassifier | None = None,
    sex: str | None = None,
    prediction: dict | None = None,
    strain=None,
) -> dict:
    """The ``diagnosis`` block of ``indices.json``: class, probabilities, model and criteria trace.

    ``prediction`` is the output of an image-based classifier (``class``, ``probabilities``,
    ``features_used``) computed by the caller; otherwise ``classifier.predict(features)`` makes it.
    ``strain`` (the case's :class:`~CardiacMTLLib.analysis.strain.StrainResult`) gives the trace its
    regional finding.
    """
    classifier = classifier if classifier is not None else load_classifier()
    if prediction is None:
        prediction = classifier.predict(features)
    trace = criteria_trace(indices, sex=sex, strain=strain)
    result = {
        "class": prediction["class"],
        "class_name": CLASS_NAMES[prediction["class"]],
        "probabilities": {c: round(p, 4) for c, p in prediction["probabilities"].items()},
        "model": f"{classifier.model_id} {classifier.version}"
        + (f" ({classifier.feature_set} features)" if getattr(classifier, "feature_set", None) else ""),
        "features_used": prediction["features_used"],
        "criteria": trace,
        "criteria_summary": criteria_summary(trace),
    }
    not_judged = sorted({t["index"] for t in trace if t["status"] == "not judged"})
    if not_judged:
        result["not_judged"] = not_judged
    return result
