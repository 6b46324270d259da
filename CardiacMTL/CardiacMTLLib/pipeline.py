"""``analyze``: the user's main action in memory, from a cine to label maps, indices, QC, diagnosis and
landmarks; it writes no files.

Called alike by the command line, the Slicer module and the browser app: :func:`analyze` works on an
in-memory :class:`~CardiacMTLLib.types.Cine` and returns an :class:`~CardiacMTLLib.types.AnalysisResult`;
:mod:`CardiacMTLLib.outputs` writes it and :mod:`CardiacMTLLib.actions` chains reading, analysis and writing.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from CardiacMTLLib import __version__
from CardiacMTLLib.analysis.gates import check_input, check_workload, plausibility_problems
from CardiacMTLLib.analysis.indices import (
    compute_indices,
    select_end_diastole_systole,
    volume_curve_ml,
    wall_thickness_mm,
)
from CardiacMTLLib.analysis.landmarks.edits import update_landmarks
from CardiacMTLLib.analysis.qc import network_qc, segmentation_qc
from CardiacMTLLib.analysis.strain import start_tracking, stop_tracking, strain_or_none
from CardiacMTLLib.errors import CardiacError, CardiacInputError
from CardiacMTLLib.io.landmarks import insertions_of_frame
from CardiacMTLLib.models.registry import load_model
from CardiacMTLLib.types import AnalysisResult, Cine

ES_DEPENDENT_KEYS = ("ES", "SV", "EF")


def run_diagnosis(
    result_indices: dict,
    ed_labels,
    es_labels,
    cine: Cine,
    wall: dict,
    classifier=None,
    images: tuple | None = None,
    strain=None,
) -> dict:
    """The ``diagnosis`` block, or ``{"class": None, "error": ...}`` saying why there is none.

    ``classifier`` is the feature-based classifier (default) or an image-based one with
    ``predict_images`` (the multi-task 3D DenseNet), which then gets ``images = (ED stack, ES stack)``.
    ``strain`` (the :class:`~CardiacMTLLib.analysis.strain.StrainResult` of these labels, or ``None``)
    gives the regional features and the regional finding of the criteria trace.
    """
    from CardiacMTLLib.analysis.diagnosis.classifiers import diagnose
    from CardiacMTLLib.analysis.diagnosis.features import diagnostic_features

    if cine.num_frames < 2:
        return {
            "class": None,
            "error": "a diagnosis needs end-diastole and end-systole; this input has one frame",
        }
    try:
        features = diagnostic_features(
            ed_labels, es_labels, cine.spacing_mm, cine.height_cm, cine.weight_kg, wall_ed=wall, strain=strain
        )
        prediction = None
        if hasattr(classifier, "predict_images"):
            prediction = classifier.predict_images(
                images[0], images[1], ed_labels, es_labels, cine.spacing_mm
            )
        return diagnose(
            result_indices,
            features,
            classifier=classifier,
            prediction=prediction,
            strain=strain,
            sex=cine.sex,
        )
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
    precision: str = "auto",
) -> AnalysisResult:
    """Segment every frame of ``cine`` and compute the clinical indices.

    ``ed_frame``/``es_frame`` are frame numbers (as in ``cine.frame_numbers``) that override the input's
    and the automatic choice. ``model`` is a loaded :class:`~CardiacMTLLib.models.registry.SegmentationModel`,
    or the shipped name or folder of one (``None``: the default), loaded on ``device`` in ``precision`` only
    once the input has passed its checks; ``classifier`` a diagnosis model (the
    shipped feature ensemble when ``None``), used unless ``diagnosis`` is false.
    """
    from CardiacMTLLib.analysis.segment import segment_cine

    check_input(cine, ed_frame, es_frame)  # before the slow part
    t0 = time.perf_counter()
    if model is None or isinstance(model, str | Path):
        model = load_model(model, device=device, precision=precision)
    load_seconds = time.perf_counter() - t0
    check_workload(cine, model.target_spacing_mm)
    t1 = time.perf_counter()
    slice_scores: dict = {}
    rv_likely: dict = {}
    labels = segment_cine(model, cine, progress=progress, slice_scores=slice_scores, rv_likely=rv_likely)
    provenance = {
        "model_id": model.model_id,
        "model_version": model.version,
        "device": model.device_text,
        "precision": model.precision,
        "software": f"CardiacMTL {__version__}",
        "python": platform.python_version(),
        "input": cine.source,
        "model_load_s": round(load_seconds, 3),
        "segmentation_s": round(time.perf_counter() - t1, 3),
    }
    return measure(
        cine,
        labels,
        provenance,
        ed_frame=ed_frame,
        es_frame=es_frame,
        classifier=classifier,
        diagnosis=diagnosis,
        slice_scores=slice_scores,
        rv_likely=rv_likely,
        checkpoint=(lambda: progress(cine.num_frames, cine.num_frames)) if progress is not None else None,
    )


def _no_checkpoint() -> None:
    return None


def ed_es_indices(cine: Cine, labels, ed_index: int, es_index: int) -> tuple[dict, dict]:
    """The ED wall thickness and the clinical indices of the label maps ``labels`` of ``cine`` at
    ``ed_index`` and ``es_index`` (body size and frame numbers from the cine), as :func:`measure` makes them."""
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
    return wall, indices


def _indices_and_landmarks(cine: Cine, labels, ed_index: int, es_index: int, rv_likely, checkpoint):
    """The wall thickness, the indices (with the AHA values) and the landmarks of :func:`measure`, and the
    seconds each took."""
    t2 = time.perf_counter()
    wall, indices = ed_es_indices(cine, labels, ed_index, es_index)
    indices_seconds = time.perf_counter() - t2
    checkpoint()
    if cine.num_frames == 1:
        # a single 3D frame: there is no systole to compare with
        for key in indices:
            if any(tag in key for tag in ES_DEPENDENT_KEYS) and key != "ED frame":
                indices[key] = None
    t4 = time.perf_counter()
    landmarks, aha = _landmarks_and_aha(labels, cine, ed_index, es_index, rv_likely)
    indices.update(aha)
    return wall, indices, landmarks, {"indices": indices_seconds, "landmarks": time.perf_counter() - t4}


def measure(
    cine: Cine,
    labels: np.ndarray,
    provenance: dict,
    ed_frame: int | None = None,
    es_frame: int | None = None,
    classifier=None,
    diagnosis: bool = True,
    slice_scores: dict | None = None,
    rv_likely: dict | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> AnalysisResult:
    """Everything ``analyze`` derives from the label maps ``(frames, slices, rows, cols)`` of ``cine``:
    ED/ES, indices, the plausibility gate, diagnosis, QC, RV insertion points and AHA values.

    ``provenance`` (model, device, timings so far) is completed here. ``slice_scores``/``rv_likely`` are the
    network's per-frame outputs when the labels are its own (network QC, RV contact for the landmarks);
    label maps a person edited come without them. ``checkpoint()`` is called between the stages: a
    background task's cancel (:class:`~CardiacMTLLib.tasks.BackgroundTask`) stops the work there instead
    of after the last stage.
    """
    checkpoint = checkpoint or _no_checkpoint
    slice_scores = slice_scores or {}
    curve = volume_curve_ml(labels, cine.spacing_mm)
    ed_index, es_index, ed_es_source = _end_diastole_systole(cine, curve, ed_frame, es_frame)
    # the motion is tracked on a thread while the indices and landmarks are measured: the strain's
    # seconds run from the tracking's start and overlap theirs
    t5 = time.perf_counter()
    tracking = start_tracking(cine, labels, ed_index, es_index)
    try:
        wall, indices, landmarks, seconds = _indices_and_landmarks(
            cine, labels, ed_index, es_index, rv_likely, checkpoint
        )
        checkpoint()
        # strain before the diagnosis: its regional features reach the classifier
        strain = strain_or_none(cine, labels, ed_index, es_index, landmarks, tracking)
        strain_seconds = time.perf_counter() - t5
    finally:  # a cancel or an error leaves no tracking running
        stop_tracking(tracking)
    checkpoint()
    t3 = time.perf_counter()
    implausible = (
        plausibility_problems(labels[ed_index], indices, cine, (ed_index, es_index))
        if cine.num_frames > 1
        else []
    )
    diagnosis_block = (
        run_diagnosis(
            indices,
            labels[ed_index],
            labels[es_index],
            cine,
            wall,
            classifier,
            images=(cine.data[ed_index], cine.data[es_index]),
            strain=strain,
        )
        if diagnosis and not implausible
        else None
    )
    if diagnosis and implausible:
        diagnosis_block = {
            "class": None,
            "error": "withheld: the result cannot support a diagnosis (" + "; ".join(implausible) + ")",
        }
    diagnosis_seconds = time.perf_counter() - t3
    checkpoint()
    qc = segmentation_qc(labels, cine.spacing_mm, cine.frame_numbers, sorted({ed_index, es_index}), curve)
    for t in sorted({ed_index, es_index}):  # the network's own doubts: entropy, regressed vs segmented areas
        if t in slice_scores:
            qc += network_qc(slice_scores[t], cine.frame_numbers[t])
    # first what concerns the whole study: why the numbers are doubtful, and what the readers noticed
    # (repeated DICOM images, Info.cfg frames ignored)
    study = [{"frame": None, "slice": None, "problem": f"implausible result: {p}"} for p in implausible]
    study += [
        {"frame": None, "slice": None, "problem": warning} for warning in cine.extra.get("warnings", [])
    ]
    qc = study + qc
    provenance = {
        **provenance,
        "ED/ES from": ed_es_source if cine.num_frames > 1 else "single frame",
        "indices_s": round(seconds["indices"], 3),
        "diagnosis_s": round(diagnosis_seconds, 3) if diagnosis else None,
        "landmarks_s": round(seconds["landmarks"], 3),
        "strain_s": round(strain_seconds, 3),
    }
    # the keys of an analysis come in one order in every file, edited or not
    order = ("model_id", "model_version", "device", "precision", "software", "python", "input", "ED/ES from")
    provenance = {**{k: provenance[k] for k in order if k in provenance}, **provenance}
    if implausible:
        provenance["plausibility"] = "implausible: " + "; ".join(implausible)
    if cine.sex is not None:
        provenance["sex"] = cine.sex  # what the sex-specific criteria were judged with
    return AnalysisResult(
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
        strain=strain,
    )


def remeasure(result: AnalysisResult, labels: np.ndarray, edited_frames, classifier=None) -> AnalysisResult:
    """The result again from label maps a person corrected (Segment Editor, the web app's brush): indices,
    plausibility, diagnosis, QC, landmarks and AHA values are recomputed; ``provenance["edited_frames"]``
    names the frames (as the user numbers them) whose labels were edited.

    ED/ES stay where the input or the user put them, and follow the corrected volume curve otherwise;
    landmarks a person moved keep their place (and the AHA values follow them).
    """
    labels = np.asarray(labels, dtype=np.uint8)
    if labels.shape != result.labels.shape:
        raise CardiacInputError(
            f"edited labels have shape {labels.shape}, the analysis {result.labels.shape}"
        )
    cine = result.cine
    named = result.provenance.get("ED/ES from") == "input"
    edited = sorted({int(f) for f in edited_frames} | set(result.provenance.get("edited_frames", [])))
    provenance = {k: v for k, v in result.provenance.items() if k not in ("plausibility", "edited_frames")}
    provenance["edited_frames"] = edited
    new = measure(
        cine,
        labels,
        provenance,
        ed_frame=cine.frame_numbers[result.ed_index] if named else None,
        es_frame=cine.frame_numbers[result.es_index] if named else None,
        classifier=classifier,
        diagnosis=result.diagnosis is not None,
    )
    # the network's doubts still hold for the frames nobody edited
    network = [
        f
        for f in result.qc
        if f.get("frame") is not None
        and f["frame"] not in edited
        and f["problem"].startswith(("uncertain segmentation", "area disagreement"))
    ]
    new.qc += network
    moved = [p for p in result.landmarks if p.get("edited")]
    return update_landmarks(new, moved) if moved else new


def _landmarks_and_aha(
    labels, cine: Cine, ed_index: int, es_index: int, rv_likely: dict | None = None
) -> tuple[list[dict], dict]:
    """RV insertion points at ED and ES (from the segmentation) and the AHA wall thickness they orient."""
    from CardiacMTLLib.analysis.indices import aha_wall_thickness_mm
    from CardiacMTLLib.analysis.landmarks.rv_insertion import detect_sax_landmarks

    landmarks = detect_sax_landmarks(labels, cine, (ed_index, es_index), rv_likely=rv_likely)
    ed_points = insertions_of_frame(landmarks, cine.frame_numbers[ed_index])
    return landmarks, aha_wall_thickness_mm(labels[ed_index], cine.spacing_mm, ed_points)
