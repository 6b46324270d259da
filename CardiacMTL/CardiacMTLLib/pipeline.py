"""``analyze``: the user's main action, from a cine to label maps, clinical indices and a report.

One function per user action, called alike by the command line, the Slicer module and the browser app:
:func:`analyze` works on an in-memory :class:`~CardiacMTLLib.cine.Cine`, :func:`write_outputs` writes
the results into a temporary folder and moves it into place only when everything is written (a failed
run leaves nothing partial), and :func:`analyze_path` chains reading, analysis and writing.
"""

from __future__ import annotations

import csv
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import check_output_folder, json_safe, staged_folder
from .cine import Cine, read_cine, write_label_map
from .errors import CardiacInputError
from .indices import compute_indices, select_end_diastole_systole, volume_curve_ml, wall_thickness_mm
from .qc import network_qc, segmentation_qc

ES_DEPENDENT_KEYS = ("ES", "SV", "EF")


@dataclass
class AnalysisResult:
    """Everything ``analyze`` found for one cine; ``labels`` is ``(frames, slices, rows, cols)``."""

    cine: Cine
    labels: np.ndarray
    indices: dict
    volume_curve_ml: dict
    ed_index: int
    es_index: int
    provenance: dict = field(default_factory=dict)
    diagnosis: dict | None = None
    qc: list[dict] = field(default_factory=list)
    landmarks: list[dict] = field(default_factory=list)
    # the fitted LV model (CardiacAtlasLib.fit results by "ED"/"ES"), when analyze was asked to fit it
    lv_fit: dict | None = None


def run_diagnosis(
    result_indices: dict,
    ed_labels,
    es_labels,
    cine: Cine,
    wall: dict,
    classifier=None,
    images: tuple | None = None,
) -> dict:
    """The ``diagnosis`` block, or ``{"class": None, "error": ...}`` saying why there is none.

    ``classifier`` is the feature-based classifier (default) or an image-based one with
    ``predict_images`` (the multi-task 3D DenseNet), which then gets ``images = (ED stack, ES stack)``.
    """
    from .diagnosis import diagnose, diagnostic_features
    from .errors import CardiacError

    if cine.num_frames < 2:
        return {
            "class": None,
            "error": "a diagnosis needs end-diastole and end-systole; this input has one frame",
        }
    try:
        features = diagnostic_features(
            ed_labels, es_labels, cine.spacing_mm, cine.height_cm, cine.weight_kg, wall_ed=wall
        )
        prediction = None
        if hasattr(classifier, "predict_images"):
            prediction = classifier.predict_images(
                images[0], images[1], ed_labels, es_labels, cine.spacing_mm
            )
        return diagnose(result_indices, features, classifier=classifier, prediction=prediction)
    except CardiacError as exc:
        return {"class": None, "error": str(exc)}


def _end_diastole_systole(cine: Cine, curve: dict, ed_frame: int | None, es_frame: int | None):
    """Frames named by the user or the input win; otherwise the LV volume curve decides."""
    ed_frame = ed_frame if ed_frame is not None else cine.end_diastole
    es_frame = es_frame if es_frame is not None else cine.end_systole
    ed_auto, es_auto = select_end_diastole_systole(curve["LV"])
    ed_index = cine.frame_index(ed_frame) if ed_frame is not None else int(ed_auto)
    es_index = cine.frame_index(es_frame) if es_frame is not None else int(es_auto)
    source = "input" if (ed_frame is not None and es_frame is not None) else "LV volume curve"
    return ed_index, es_index, source


def analyze(
    cine: Cine,
    model=None,
    device: str = "auto",
    ed_frame: int | None = None,
    es_frame: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    classifier=None,
    diagnosis: bool = True,
    fit_lv_model: bool = False,
) -> AnalysisResult:
    """Segment every frame of ``cine`` and compute the clinical indices.

    ``ed_frame``/``es_frame`` are frame numbers (as in ``cine.frame_numbers``) that override the input's
    and the automatic choice. ``model`` is a loaded :class:`~CardiacMTLLib.segment.SegmentationModel`
    (loaded from the shipped weights on ``device`` when ``None``); ``classifier`` a
    :class:`~CardiacMTLLib.diagnosis.FeatureClassifier` (the shipped one when ``None``), used unless
    ``diagnosis`` is false.
    """
    from .segment import load_model, segment_cine

    for frame in (ed_frame, es_frame):
        if frame is not None:
            cine.frame_index(frame)  # a frame the cine lacks is an input error, found before the slow part
    t0 = time.perf_counter()
    if model is None:
        model = load_model(device=device)
    load_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    slice_scores: dict = {}
    rv_likely: dict = {}
    labels = segment_cine(model, cine, progress=progress, slice_scores=slice_scores, rv_likely=rv_likely)
    segment_seconds = time.perf_counter() - t1
    curve = volume_curve_ml(labels, cine.spacing_mm)
    ed_index, es_index, ed_es_source = _end_diastole_systole(cine, curve, ed_frame, es_frame)
    t2 = time.perf_counter()
    wall = wall_thickness_mm(labels[ed_index], cine.spacing_mm)
    indices = compute_indices(
        labels[ed_index],
        labels[es_index],
        cine.spacing_mm,
        height_cm=cine.height_cm,
        weight_kg=cine.weight_kg,
        ed_frame=cine.frame_numbers[ed_index],
        es_frame=cine.frame_numbers[es_index],
        wall=wall,
    )
    indices_seconds = time.perf_counter() - t2
    if cine.num_frames == 1:
        # a single 3D frame: there is no systole to compare with
        for key in indices:
            if any(tag in key for tag in ES_DEPENDENT_KEYS) and key != "ED frame":
                indices[key] = None
    t3 = time.perf_counter()
    diagnosis_block = (
        run_diagnosis(
            indices,
            labels[ed_index],
            labels[es_index],
            cine,
            wall,
            classifier,
            images=(cine.data[ed_index], cine.data[es_index]),
        )
        if diagnosis
        else None
    )
    diagnosis_seconds = time.perf_counter() - t3
    qc = segmentation_qc(labels, cine.spacing_mm, cine.frame_numbers, sorted({ed_index, es_index}))
    for t in sorted(
        {ed_index, es_index}
    ):  # the network's own doubts: entropy, and regressed vs segmented areas
        qc += network_qc(slice_scores[t], cine.frame_numbers[t])
    t4 = time.perf_counter()
    landmarks, aha = _landmarks_and_aha(labels, cine, ed_index, es_index, rv_likely)
    indices.update(aha)
    landmark_seconds = time.perf_counter() - t4
    provenance = {
        "model_id": model.model_id,
        "model_version": model.version,
        "device": model.device_text,
        "precision": model.precision,
        "software": f"CardiacMTL {__version__}",
        "python": platform.python_version(),
        "input": cine.source,
        "ED/ES from": ed_es_source if cine.num_frames > 1 else "single frame",
        "model_load_s": round(load_seconds, 3),
        "segmentation_s": round(segment_seconds, 3),
        "indices_s": round(indices_seconds, 3),
        "diagnosis_s": round(diagnosis_seconds, 3) if diagnosis else None,
        "landmarks_s": round(landmark_seconds, 3),
    }
    result = AnalysisResult(
        cine=cine,
        labels=labels,
        indices=indices,
        volume_curve_ml={k: [round(float(v), 3) for v in vals] for k, vals in curve.items()},
        ed_index=ed_index,
        es_index=es_index,
        provenance=provenance,
        diagnosis=diagnosis_block,
        qc=qc,
        landmarks=landmarks,
    )
    if fit_lv_model:
        fit_lv(result)
    return result


def fit_lv(result: AnalysisResult) -> AnalysisResult:
    """Fit the LV finite-element model (CardiacAtlas) to the result's ED and ES segmentation and landmarks.

    Stores the fits in ``result.lv_fit`` (written by :func:`write_outputs` into ``lv_model/``, where
    ``cardiac-atlas build`` finds them) and the time in ``provenance["lv_fit_s"]``.
    """
    from CardiacAtlasLib.fit import fit_analysis

    t0 = time.perf_counter()
    result.lv_fit = fit_analysis(result)
    result.provenance["lv_fit_s"] = round(time.perf_counter() - t0, 3)
    return result


def _landmarks_and_aha(
    labels, cine: Cine, ed_index: int, es_index: int, rv_likely: dict | None = None
) -> tuple[list[dict], dict]:
    """RV insertion points at ED and ES (from the segmentation) and the AHA wall thickness they orient."""
    from .indices import aha_wall_thickness_mm
    from .landmarks import detect_sax_landmarks, insertions_of_frame

    landmarks = detect_sax_landmarks(labels, cine, (ed_index, es_index), rv_likely=rv_likely)
    ed_points = insertions_of_frame(landmarks, cine.frame_numbers[ed_index])
    return landmarks, aha_wall_thickness_mm(labels[ed_index], cine.spacing_mm, ed_points)


def _segmentation_names(cine: Cine) -> list[str]:
    """One file per input image for ACDC frame files, else one (3D or 4D) label map for the cine."""
    stems = cine.image_stems or [Path(cine.source).name.split(".")[0] or "cine"]
    if len(stems) == cine.num_frames and cine.num_frames > 1:
        return [f"{stem}_seg.nii.gz" for stem in stems]
    return [f"{stems[0]}_seg.nii.gz"]


def _qc_text(finding: dict) -> str:
    where = f"frame {finding['frame']}" + ("" if finding["slice"] is None else f" slice {finding['slice']}")
    return f"{where}: {finding['problem']}"


def diagnosis_columns(diagnosis: dict | None) -> dict:
    """The diagnosis as flat ``indices.csv`` columns (class, one probability per class, model, criteria)."""
    from .diagnosis import CLASSES

    if diagnosis is None:
        return {}
    columns = {"Diagnosis": diagnosis.get("class")}
    probabilities = diagnosis.get("probabilities") or {}
    for cls in CLASSES:
        columns[f"P({cls})"] = probabilities.get(cls)
    columns["Diagnosis model"] = diagnosis.get("model")
    for cls, text in (diagnosis.get("criteria_summary") or {}).items():
        columns[f"Criteria {cls}"] = text
    if diagnosis.get("error"):
        columns["Diagnosis error"] = diagnosis["error"]
    return columns


def write_outputs(
    result: AnalysisResult,
    out_dir: str | Path,
    overwrite: bool = False,
    inputs: tuple = (),
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write label maps, ``indices.csv``/``indices.json`` and ``report.png`` into ``out_dir`` atomically.

    Everything is written to a temporary sibling folder first and moved into place at the end, under the
    output policy of :func:`~CardiacMTLLib.atomic.check_output_folder` (``overwrite`` replaces the files of
    an earlier run; a folder with anyone else's files is refused). ``inputs`` are never written over.
    ``extra(folder)`` may add files of a front end's own (Slicer's markups) to the staged folder.
    """
    from .report import write_report

    with staged_folder(out_dir, inputs=inputs, overwrite=overwrite) as staging:
        seg_dir = staging / "segmentation"
        seg_dir.mkdir()
        names = _segmentation_names(result.cine)
        if len(names) == result.cine.num_frames and result.cine.num_frames > 1:
            for t, name in enumerate(names):
                write_label_map(
                    result.labels[t], result.cine.affine, seg_dir / name, spacing_mm=result.cine.spacing_mm
                )
        else:
            labels = result.labels[0] if result.cine.num_frames == 1 else result.labels
            write_label_map(labels, result.cine.affine, seg_dir / names[0], spacing_mm=result.cine.spacing_mm)
        row = dict(result.indices)
        row.update(diagnosis_columns(result.diagnosis))
        row["QC findings"] = "; ".join(_qc_text(f) for f in result.qc)
        row.update({f"provenance: {k}": v for k, v in result.provenance.items()})
        with open(staging / "indices.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        document = {
            "indices": result.indices,
            "volume_curve_ml": {"frames": result.cine.frame_numbers, **result.volume_curve_ml},
            "segmentation_files": [f"segmentation/{n}" for n in names],
            "labels": {"0": "background", "1": "RV cavity", "2": "LV myocardium", "3": "LV cavity"},
            "diagnosis": result.diagnosis,
            "qc": result.qc,
            "provenance": result.provenance,
        }
        (staging / "indices.json").write_text(json.dumps(json_safe(document), indent=2))
        write_report(result, staging / "report.png")
        from .landmarks import write_landmark_files

        write_landmark_files(result.landmarks, staging)
        if result.lv_fit:
            from CardiacAtlasLib.fit import write_fit_folder

            write_fit_folder(
                result.lv_fit,
                staging / "lv_model",
                {"path": str(result.cine.source), "kind": "analyze (segmentation and landmarks)"},
            )
        if extra is not None:
            extra(staging)
    return Path(out_dir).resolve()


def export_folder(result: AnalysisResult, parent: str | Path) -> Path:
    """Where a GUI's Export writes ``result``: a folder named after the case inside the folder the user
    picked, so that picking a folder with other files in it never touches them."""
    source = Path(str(result.cine.source or "case"))
    stem = source.name.split(".nii")[0].split(".")[0] or "case"
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)
    return Path(parent) / f"{stem}_cardiacmtl"


def analyze_path(
    path: str | Path,
    out_dir: str | Path,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    device: str = "auto",
    model=None,
    ed_frame: int | None = None,
    es_frame: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    landmarks_file: str | Path | None = None,
    classifier=None,
    fit_lv_model: bool = False,
    overwrite: bool = False,
) -> AnalysisResult:
    """Read the cine at ``path`` (ACDC folder, NIfTI 3D/4D, DICOM folder), analyse it, write ``out_dir``.

    ``landmarks_file`` is a corrected ``landmarks.json`` or ``landmarks.mrk.json``: its points replace the
    automatic ones (marked edited where they moved) and the indices that depend on them are recomputed.
    """
    from .landmarks import read_landmarks_file, update_landmarks

    inputs = (path,) if landmarks_file is None else (path, landmarks_file)
    check_output_folder(out_dir, inputs=inputs, overwrite=overwrite)  # before the work, not after
    corrected = read_landmarks_file(landmarks_file) if landmarks_file is not None else None
    for name, value in (("height", height_cm), ("weight", weight_kg)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise CardiacInputError(f"{name} must be a positive number, got {value}")
    cine = read_cine(path, height_cm=height_cm, weight_kg=weight_kg)
    result = analyze(
        cine,
        model=model,
        device=device,
        ed_frame=ed_frame,
        es_frame=es_frame,
        progress=progress,
        classifier=classifier,
    )
    if corrected is not None:
        result = update_landmarks(result, corrected)
    if fit_lv_model:  # after the landmark corrections: the model's pose depends on them
        fit_lv(result)
    write_outputs(result, out_dir, overwrite=overwrite, inputs=inputs)
    return result
