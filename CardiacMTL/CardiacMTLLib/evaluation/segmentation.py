"""Evaluating a segmentation model on ACDC patients (``cardiac-train evaluate``): Dice and Hausdorff per
volume on the native grid, per-slice areas and the QC scores' power to find bad slices."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.qc import slice_network_scores
from CardiacMTLLib.analysis.segment import largest_component_per_structure, predict_with_areas
from CardiacMTLLib.atomic import check_output_file, starts_with, write_text_atomic
from CardiacMTLLib.datasets.acdc import load_annotated_frames
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.evaluation.metrics import REPORTED_STRUCTURES, dice, hausdorff_mm
from CardiacMTLLib.io.cine import read_volume
from CardiacMTLLib.io.nifti import read_nifti_volume
from CardiacMTLLib.models.registry import WEIGHTS, load_model, write_model_folder
from CardiacMTLLib.types import STRUCTURES

BAD_SLICE_DICE = 0.8


@dataclass
class EvaluationConfig:
    """What ``cardiac-train evaluate`` is asked to do."""

    data: str | Path  # ACDC training folder
    model: str | Path  # model folder (manifest.json + weights.pt)
    patients: list[str] | None = None  # default: the manifest's validation split
    device: str = "auto"
    precision: str = "auto"
    csv: str | Path | None = None  # per-volume scores
    slices_csv: str | Path | None = None  # per-slice Dice, areas and QC scores
    write_manifest: bool = False  # store the scores in the model folder's manifest
    overwrite: bool = False  # replace CSV files an earlier evaluation wrote (never another file)


# the first columns of the two tables: how a CSV file an earlier evaluation wrote is told from any other
VOLUME_TABLE_START, SLICE_TABLE_START = "patient,frame,dice_", "patient,frame,slice,area_true_"


def check_tables(config: EvaluationConfig) -> None:
    """Before any work: the CSV files asked for may be written (:func:`~CardiacMTLLib.atomic.check_output_file`:
    a new file, or with ``overwrite`` a table of the same kind an earlier evaluation wrote; never anyone
    else's file), and they are two different files."""
    tables = [(config.csv, VOLUME_TABLE_START), (config.slices_csv, SLICE_TABLE_START)]
    for path, start in tables:
        if path:
            check_output_file(
                path, inputs=(config.data, config.model), overwrite=config.overwrite,
                written_by_project=starts_with(start),
            )  # fmt: skip
    if config.csv and config.slices_csv and Path(config.csv).resolve() == Path(config.slices_csv).resolve():
        raise CardiacInputError(f"--csv and --slices-csv are the same file ({config.csv}); give two names")


def evaluate_segmentation(config: EvaluationConfig) -> dict:
    """Dice and Hausdorff on the native grid, through the exact inference code, for the held-out patients."""
    from tqdm import tqdm

    check_tables(config)
    model = load_model(config.model, device=config.device, precision=config.precision)
    patients = config.patients or model.manifest["training"]["validation_patients"]
    rows, slice_rows = [], []
    for patient in tqdm(patients, desc="evaluating", unit="patient"):
        for frame, image_path, label_path in load_annotated_frames(Path(config.data), patient):
            image, spacing, _ = read_volume(image_path)
            truth, _, _ = read_nifti_volume(label_path)
            probs, areas = predict_with_areas(model, image, spacing)
            pred = largest_component_per_structure(np.argmax(probs, axis=0).astype(np.uint8))
            row = {"patient": patient, "frame": frame}
            for s in REPORTED_STRUCTURES:
                row[f"dice_{s.short_name}"] = dice(pred == s, truth == s)
                row[f"hd_{s.short_name}_mm"] = hausdorff_mm(pred == s, truth == s, spacing[::-1])
            rows.append(row)
            slice_rows += per_slice_rows(patient, frame, probs, pred, truth, areas, spacing)
    summary = {"patients": len(patients), "volumes": len(rows)}
    for s in REPORTED_STRUCTURES:
        name = s.short_name
        summary[f"dice_{name}"] = round(float(np.mean([r[f"dice_{name}"] for r in rows])), 4)
        summary[f"hd_{name}_mm"] = round(float(np.nanmean([r[f"hd_{name}_mm"] for r in rows])), 2)
    summary.update(slice_summary(slice_rows))
    print(json.dumps(summary, indent=2))
    check_tables(config)  # nothing appeared there meanwhile
    if config.write_manifest:
        write_scores(model.model_dir, model.manifest, summary)
    if config.csv:
        write_rows(config.csv, rows)
    if config.slices_csv:
        write_rows(config.slices_csv, slice_rows)
    return summary


def write_scores(model_dir: Path, manifest: dict, summary: dict) -> Path:
    """The model folder again, its manifest with ``scores``: written whole and moved into place, never
    rewritten in place."""
    scored = {k: v for k, v in manifest.items() if k != "sha256"}
    scored["scores"] = {"validation_native_grid": summary, "evaluated_with": "cardiac-train evaluate"}
    return write_model_folder(model_dir, None, scored, {WEIGHTS: model_dir / WEIGHTS})


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """The table ``rows`` as CSV, written beside ``path`` and renamed into place when complete."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(text.getvalue(), path)


def per_slice_rows(patient, frame, probs, pred, truth, areas, spacing) -> list[dict]:
    """One row per slice with heart in the truth or the prediction: Dice, areas and the QC scores."""
    scores = slice_network_scores(probs, pred, areas, spacing)
    pixel_mm2 = float(spacing[0]) * float(spacing[1])
    rows = []
    for z in range(truth.shape[0]):
        if not (truth[z].any() or pred[z].any()):
            continue
        row = {"patient": patient, "frame": frame, "slice": z}
        dices = []
        for i, s in enumerate(STRUCTURES):
            a, b = pred[z] == s, truth[z] == s
            row[f"area_true_{s.short_name}_mm2"] = float(b.sum() * pixel_mm2)
            row[f"area_seg_{s.short_name}_mm2"] = float(scores["segmented_area_mm2"][z, i])
            if areas is not None:
                row[f"area_reg_{s.short_name}_mm2"] = float(areas[z, i])
            if a.any() or b.any():  # a structure absent from both does not count for the slice
                dices.append(dice(a, b))
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
    for s in STRUCTURES:
        truth = np.array([r[f"area_true_{s.short_name}_mm2"] for r in slice_rows])
        for source in ("seg", "reg"):
            key = f"area_{source}_{s.short_name}_mm2"
            if key in slice_rows[0]:
                values = np.array([r[key] for r in slice_rows])
                out[f"area_mad_{source}_{s.short_name}_mm2"] = round(
                    float(np.mean(np.abs(values - truth))), 1
                )
    bad = np.array([r["dice_mean"] < BAD_SLICE_DICE for r in slice_rows])
    out["bad_slices"] = int(bad.sum())
    if 0 < bad.sum() < len(bad):
        for score in ("area_disagreement", "entropy"):
            if score in slice_rows[0]:
                values = np.array([r[score] for r in slice_rows])
                out[f"auc_{score}"] = round(float(roc_auc_score(bad, values)), 3)
    return out
