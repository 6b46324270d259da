"""Diagnosis by the multi-task 3D DenseNet of the thesis: input preparation (training and inference share it),
the 13 handcrafted features it learns to predict, and the loaded-model class used by ``analyze``.

Input preparation follows the thesis (section 4.2) at a coarser, CPU-sized resolution: each phase is
intensity-normalised and resampled in plane to :data:`SPACING_MM`, cropped to :data:`SIZE` pixels around
the heart (the centre of the labelled heart at end-diastole: expert labels in training, the segmentation in
use, as the thesis crops around a bounding box from segmentation maps), and :data:`SLICES` consecutive
slices are taken (random in training, the central ones in use). The three channels are ED, ED - ES and ES.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.preprocess import (
    center_crop_or_pad,
    normalise_intensity,
    resample_inplane,
    resample_labels_inplane,
)
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.models.device import resolve_device
from CardiacMTLLib.models.registry import load_once, read_model_folder
from CardiacMTLLib.types import CLASS_NAMES, CLASSES

SPACING_MM = 2.5
SIZE = 64
SLICES = 6
HANDCRAFTED = (
    "LV ED",
    "RV ED",
    "Myo ED",
    "LV ES",
    "RV ES",
    "Myo ES",
    "LV EF",
    "RV EF",
    "Myo ES/ED",
    "LV/RV ED",
    "LV/RV ES",
    "Myo/LV ED",
    "Myo/LV ES",
)


def handcrafted_features(ed_labels: np.ndarray, es_labels: np.ndarray, spacing_mm) -> np.ndarray:
    """The thesis' 13 features: six volumes (mL), three ED/ES ratios and four ratios between structures."""
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    vol = {}
    for phase, labels in (("ED", ed_labels), ("ES", es_labels)):
        for k, name in ((3, "LV"), (1, "RV"), (2, "Myo")):
            vol[f"{name} {phase}"] = float((labels == k).sum()) * voxel_ml

    def ratio(a, b):
        return a / b if b > 0 else 0.0

    values = [vol[k] for k in HANDCRAFTED[:6]] + [
        1 - ratio(vol["LV ES"], vol["LV ED"]),
        1 - ratio(vol["RV ES"], vol["RV ED"]),
        ratio(vol["Myo ES"], vol["Myo ED"]),
        ratio(vol["LV ED"], vol["RV ED"]),
        ratio(vol["LV ES"], vol["RV ES"]),
        ratio(vol["Myo ED"], vol["LV ED"]),
        ratio(vol["Myo ES"], vol["LV ES"]),
    ]
    return np.array(values, dtype=np.float32)


def prepare_case(ed_image, es_image, ed_labels, es_labels, spacing_mm) -> tuple[np.ndarray, np.ndarray]:
    """``(image (3, slices, SIZE, SIZE), labels (2, slices, SIZE, SIZE))`` for one patient, all slices.

    ``spacing_mm`` is ``(col, row, slice)`` as in :class:`~CardiacMTLLib.cine.Cine`; the labels locate the
    heart (and are the segmentation targets in training).
    """
    rc = (float(spacing_mm[1]), float(spacing_mm[0]))
    if np.asarray(ed_image).shape != np.asarray(es_image).shape:
        raise CardiacInputError(f"ED and ES stacks differ in shape: {ed_image.shape} vs {es_image.shape}")
    heart = np.asarray(ed_labels) > 0
    if not heart.any():
        raise CardiacInputError(
            "no heart in the end-diastolic segmentation: cannot centre the DenseNet input"
        )
    images, labels = [], []
    for image, lab in ((ed_image, ed_labels), (es_image, es_labels)):
        images.append(resample_inplane(normalise_intensity(image), rc, SPACING_MM))
        labels.append(resample_labels_inplane(np.asarray(lab, dtype=np.uint8), rc, SPACING_MM, 4))
    rr, cc = np.nonzero(labels[0].max(axis=0) > 0)
    center = ((rr.min() + rr.max()) / 2.0, (cc.min() + cc.max()) / 2.0)
    crops = [center_crop_or_pad(x, SIZE, center)[0] for x in images + labels]
    ed, es, led, les = crops
    return np.stack([ed, ed - es, es]).astype(np.float32), np.stack([led, les]).astype(np.uint8)


def slice_window(n_slices: int, start: int | None = None) -> slice:
    """:data:`SLICES` consecutive slices: from ``start``, or the central ones (padded when fewer)."""
    if start is None:
        start = max(0, (n_slices - SLICES) // 2)
    return slice(start, start + SLICES)


def window(array: np.ndarray, start: int | None = None) -> np.ndarray:
    """Take :func:`slice_window` along axis 1, zero-padding stacks with fewer than :data:`SLICES` slices."""
    out = array[:, slice_window(array.shape[1], start)]
    if out.shape[1] < SLICES:
        pad = np.zeros((out.shape[0], SLICES - out.shape[1]) + out.shape[2:], dtype=out.dtype)
        out = np.concatenate([out, pad], axis=1)
    return out


@dataclass
class DenseNetClassifier:
    """A trained multi-task DenseNet folder (``manifest.json`` + ``weights.pt``) ready to diagnose."""

    net: object
    manifest: dict
    model_dir: Path

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("model_id", "acdc-densenet3d-mtl"))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unknown"))

    def predict_images(self, ed_image, es_image, ed_labels, es_labels, spacing_mm) -> dict:
        import torch

        x, _ = prepare_case(ed_image, es_image, ed_labels, es_labels, spacing_mm)
        device = next(self.net.parameters()).device
        with torch.inference_mode():
            logits = self.net(torch.from_numpy(window(x))[None].to(device))["logits"][0]
            proba = torch.softmax(logits.float(), dim=0).cpu().numpy()
        probabilities = {c: float(p) for c, p in zip(CLASSES, proba, strict=True)}
        return {
            "class": max(probabilities, key=probabilities.get),
            "probabilities": probabilities,
            "features_used": "images: ED, ES and their difference (central slices)",
        }


def load_densenet_classifier(model_dir: str | Path, device: str = "auto") -> DenseNetClassifier:
    """The multi-task DenseNet of a model folder on ``device``, loaded once."""
    model_dir = Path(model_dir)
    device = resolve_device(device)

    def load() -> DenseNetClassifier:
        from CardiacMTLLib.models.nets.densenet3d import MultiTaskDenseNet3D

        manifest, state = read_model_folder(model_dir)
        kwargs = dict(manifest["network_kwargs"])
        kwargs["tasks"] = tuple(kwargs.get("tasks", ()))
        net = MultiTaskDenseNet3D(**kwargs)
        net.load_state_dict(state)
        return DenseNetClassifier(net=net.to(device).eval(), manifest=manifest, model_dir=model_dir)

    return load_once("diagnosis-densenet", model_dir, device, "fp32", load)


__all__ = ["CLASS_NAMES", "DenseNetClassifier", "handcrafted_features", "load_densenet_classifier"]
