"""Evaluating a segmentation model on ACDC patients."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from CardiacMTLLib.datasets.acdc import load_annotated_frames
from CardiacMTLLib.evaluation.metrics import dice_per_class, hausdorff_mm
from CardiacMTLLib.io.cine import read_nifti_volume


def evaluate_segmentation(args: argparse.Namespace) -> dict:
    """Dice and Hausdorff on the native grid, through the exact inference code, for the held-out patients."""
    from tqdm import tqdm

    from CardiacMTLLib.analysis.segment import largest_component_per_structure, predict_with_areas
    from CardiacMTLLib.io.cine import read_volume
    from CardiacMTLLib.models.registry import load_model

    model_dir = Path(args.model)
    model = load_model(model_dir, device=args.device, precision=getattr(args, "precision", "auto"))
    patients = args.patients or model.manifest["training"]["validation_patients"]
    rows, slice_rows = [], []
    for patient in tqdm(patients, desc="evaluating", unit="patient"):
        for frame, image_path, label_path in load_annotated_frames(Path(args.data), patient):
            image, spacing, _ = read_volume(image_path)
            truth, _, _ = read_nifti_volume(label_path)
            probs, areas = predict_with_areas(model, image, spacing)
            pred = largest_component_per_structure(np.argmax(probs, axis=0).astype(np.uint8))
            row = {"patient": patient, "frame": frame}
            for k, name in ((3, "LV"), (1, "RV"), (2, "Myo")):
                row[f"dice_{name}"] = dice_per_class(pred, truth, (k,))[k]
                row[f"hd_{name}_mm"] = hausdorff_mm(pred == k, truth == k, spacing[::-1])
            rows.append(row)
            slice_rows += per_slice_rows(patient, frame, probs, pred, truth, areas, spacing)
    summary = {"patients": len(patients), "volumes": len(rows)}
    for name in ("LV", "RV", "Myo"):
        summary[f"dice_{name}"] = round(float(np.mean([r[f"dice_{name}"] for r in rows])), 4)
        summary[f"hd_{name}_mm"] = round(float(np.nanmean([r[f"hd_{name}_mm"] for r in rows])), 2)
    summary.update(slice_summary(slice_rows))
    print(json.dumps(summary, indent=2))
    if args.write_manifest:
        manifest_path = model_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["scores"] = {"validation_native_grid": summary, "evaluated_with": "cardiac-train evaluate"}
        manifest_path.write_text(json.dumps(manifest, indent=2))
    if args.csv:
        import csv

        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if getattr(args, "slices_csv", None):
        import csv

        with open(args.slices_csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(slice_rows[0]))
            writer.writeheader()
            writer.writerows(slice_rows)
    return summary


BAD_SLICE_DICE = 0.8
STRUCTURES = ((1, "RV"), (2, "Myo"), (3, "LV"))


def per_slice_rows(patient, frame, probs, pred, truth, areas, spacing) -> list[dict]:
    """One row per slice with heart in the truth or the prediction: Dice, areas and the QC scores."""
    from CardiacMTLLib.analysis.qc import slice_network_scores

    scores = slice_network_scores(probs, pred, areas, spacing)
    pixel_mm2 = float(spacing[0]) * float(spacing[1])
    rows = []
    for z in range(truth.shape[0]):
        if not (truth[z].any() or pred[z].any()):
            continue
        row = {"patient": patient, "frame": frame, "slice": z}
        dices = []
        for i, (k, name) in enumerate(STRUCTURES):
            a, b = pred[z] == k, truth[z] == k
            row[f"area_true_{name}_mm2"] = float(b.sum() * pixel_mm2)
            row[f"area_seg_{name}_mm2"] = float(scores["segmented_area_mm2"][z, i])
            if areas is not None:
                row[f"area_reg_{name}_mm2"] = float(areas[z, i])
            if a.any() or b.any():
                dices.append(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))
        row["dice_mean"] = float(np.mean(dices))
        row["entropy"] = float(scores["entropy"][z])
        if areas is not None:
            row["area_disagreement"] = float(scores["area_disagreement"][z])
        rows.append(row)
    return rows


def slice_summary(slice_rows: list[dict]) -> dict:
    """Area MAD per structure (segmented and, for a multi-task network, regressed) and the QC flags' AUC
    for detecting slices with Dice below :data:`BAD_SLICE_DICE`."""
    from sklearn.metrics import roc_auc_score

    out = {"slices": len(slice_rows)}
    for _, name in STRUCTURES:
        truth = np.array([r[f"area_true_{name}_mm2"] for r in slice_rows])
        for source in ("seg", "reg"):
            key = f"area_{source}_{name}_mm2"
            if key in slice_rows[0]:
                values = np.array([r[key] for r in slice_rows])
                out[f"area_mad_{source}_{name}_mm2"] = round(float(np.mean(np.abs(values - truth))), 1)
    bad = np.array([r["dice_mean"] < BAD_SLICE_DICE for r in slice_rows])
    out["bad_slices"] = int(bad.sum())
    if 0 < bad.sum() < len(bad):
        for score in ("area_disagreement", "entropy"):
            if score in slice_rows[0]:
                values = np.array([r[score] for r in slice_rows])
                out[f"auc_{score}"] = round(float(roc_auc_score(bad, values)), 3)
    return out
