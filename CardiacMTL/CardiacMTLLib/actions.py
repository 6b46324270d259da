"""The user's actions on files, as the command line, Slicer and scripts call them: read the input, analyse
it in memory, write one staged result folder under the output policy (:mod:`CardiacMTLLib.atomic`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from CardiacMTLLib import __version__
from CardiacMTLLib.analysis.indices import compute_indices
from CardiacMTLLib.analysis.landmarks.edits import update_landmarks
from CardiacMTLLib.analysis.landmarks.mitral import (
    METHODS,
    VIEWS,
    detect_mv_hinges,
    load_lax_model,
    load_lax_segmentation_model,
    model_method,
    segment_lax,
)
from CardiacMTLLib.analysis.landmarks.views import check_described_view, check_long_axis
from CardiacMTLLib.atomic import check_output_file, check_output_folder, staged_folder, write_json_atomic
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import checked_patient, read_cine
from CardiacMTLLib.io.landmarks import read_landmarks_file, write_landmark_files
from CardiacMTLLib.io.lax import plane_of, read_lax_cine
from CardiacMTLLib.io.nifti import read_label_map, write_label_map
from CardiacMTLLib.models.registry import preload_model
from CardiacMTLLib.outputs import write_outputs
from CardiacMTLLib.pipeline import analyze
from CardiacMTLLib.report.drawing import preload_drawing, wait_for_drawing
from CardiacMTLLib.report.landmarks import write_hinge_figure
from CardiacMTLLib.types import AnalysisResult


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
    overwrite: bool = False,
    fit: Callable[[AnalysisResult], object] | None = None,
    write: Callable[..., Path] | None = None,
    precision: str = "auto",
    sex: str | None = None,
    all_frames: bool = False,
) -> AnalysisResult:
    """Read the cine at ``path`` (ACDC folder, NIfTI 3D/4D, DICOM folder), analyse it, write ``out_dir``.

    ``landmarks_file`` is a corrected ``landmarks.json`` or ``landmarks.mrk.json``: its points replace the
    automatic ones (marked edited where they moved) and the indices that depend on them are recomputed.
    ``fit(result)`` runs after the corrections (the LV model of CardiacAtlas: its pose depends on them) and
    ``write`` replaces :func:`~CardiacMTLLib.outputs.write_outputs` (to add that model's files).
    ``model`` is a loaded segmentation model, or the shipped name or folder of one (``None``: the default),
    loaded on ``device`` in ``precision``: a network that runs on OpenVINO compiles on a thread while the
    input is read (:func:`~CardiacMTLLib.models.registry.preload_model`), one on torch only once the input
    has been read and checked; with OpenVINO, matplotlib (for the report) is imported on a thread while the
    network runs (:func:`~CardiacMTLLib.report.drawing.preload_drawing`). ``sex`` (``"M"``
    or ``"F"``), like ``height_cm`` and ``weight_kg``, overrides what the input records; ``all_frames`` analyses
    every frame of an ACDC patient folder's ``_4d.nii.gz`` cine instead of its ED and ES frame files.
    """

    inputs = (path,) if landmarks_file is None else (path, landmarks_file)
    check_output_folder(out_dir, inputs=inputs, overwrite=overwrite)  # before the work, not after
    corrected = read_landmarks_file(landmarks_file) if landmarks_file is not None else None
    # a network that runs on OpenVINO compiles while the input is read, and matplotlib is imported while
    # it runs (outside Python's lock); torch is never imported beside it
    openvino = isinstance(model, str | Path | None) and preload_model(model, device, precision) is not None
    cine = read_cine(path, height_cm=height_cm, weight_kg=weight_kg, sex=sex, all_frames=all_frames)
    if openvino:
        preload_drawing()
    try:
        result = analyze(
            cine,
            model=model,
            device=device,
            precision=precision,
            ed_frame=ed_frame,
            es_frame=es_frame,
            progress=progress,
            classifier=classifier,
        )
    finally:
        wait_for_drawing()  # its import finished before anything draws (the report, a fit, the caller)
    if corrected is not None:
        result = update_landmarks(result, corrected, source=str(landmarks_file))
    if fit is not None:
        fit(result)
    (write or write_outputs)(result, out_dir, overwrite=overwrite, inputs=inputs)
    return result


def landmarks_path(
    path: str | Path,
    view: str,
    out_dir: str | Path,
    model_dir=None,
    method: str = "segmentation",
    overwrite: bool = False,
    plane: int | None = None,
    device: str = "auto",
) -> list[dict]:
    """``cardiac-mtl landmarks``: hinge points of a long-axis cine written to ``out_dir`` atomically.

    ``model_dir`` (optional) is a model folder of either kind; it decides the method. The input must be a
    long-axis cine of ``view`` (:mod:`~CardiacMTLLib.analysis.landmarks.views`); a series of several
    parallel planes gets hinges on every plane (``slice`` = plane), or on ``plane`` only.
    """
    check_output_folder(out_dir, inputs=(path,), overwrite=overwrite)
    if view not in VIEWS:
        raise CardiacInputError(f"view must be one of {VIEWS}, got {view!r}")
    if model_dir is not None:
        method = model_method(model_dir)
    if method not in METHODS:
        raise CardiacInputError(f"method must be one of {METHODS}, got {method!r}")
    cine = read_lax_cine(path, several_planes=True)
    check_described_view(cine, view, str(path))
    planes = list(range(cine.num_slices))
    if plane is not None:
        if plane not in planes:
            raise CardiacInputError(
                f"{path}: --plane {plane} is not one of the {len(planes)} plane(s) {planes}"
            )
        planes = [plane]
    segmentation_model = load_lax_segmentation_model(model_dir if method == "segmentation" else None, device)
    model = load_lax_model(model_dir, device) if method == "vgg" else segmentation_model
    t0 = time.perf_counter()
    points, plane_labels, plane_cines = [], [], []
    for k in planes:
        one = plane_of(cine, k) if cine.num_slices > 1 else cine
        where = f"{path}" + (f" plane {k}" if cine.num_slices > 1 else "")
        labels: list = []
        # the hinges of the segmentation method are read from the long-axis labels: they also serve the
        # view check (nothing is written before it); the VGG network needs them for the check alone
        found = detect_mv_hinges(one, model, method, labels_out=labels if method == "segmentation" else None)
        if not labels:
            labels.append(segment_lax(segmentation_model, one))
        check_long_axis(labels[0], one.inplane_spacing_rc_mm, where)
        for point in found:
            if cine.num_slices > 1:  # the plane's index in the series, in the series' own voxel grid
                point["slice"] = k
                point["ijk"][2] = float(k)
        points += found
        plane_labels.append(labels[0])
        plane_cines.append(one)
    seconds = time.perf_counter() - t0
    with staged_folder(out_dir, inputs=(path,), overwrite=overwrite) as staging:
        write_landmark_files(points, staging)
        if method == "segmentation":  # what the hinges were read from, to check them against the image
            stack = np.stack(plane_labels, axis=1)  # (frames, planes, rows, cols)
            whole = cine.num_slices > 1 and len(planes) == cine.num_slices
            affine = cine.affine if whole else plane_cines[0].affine
            write_label_map(stack, affine, staging / "lax_segmentation.nii.gz", cine.spacing_mm)
        for k, one, labels in zip(planes, plane_cines, plane_labels, strict=True):
            name = "landmarks.png" if len(planes) == 1 else f"landmarks_plane{k}.png"
            mine = points if len(planes) == 1 else [p for p in points if p["slice"] == k]
            write_hinge_figure(one, mine, staging / name, labels)
        (staging / "provenance.json").write_text(
            json.dumps(
                {
                    "input": str(path),
                    "view": view,
                    "method": method,
                    "model_id": model.manifest.get("model_id"),
                    "frames": cine.num_frames,
                    "planes": planes,
                    "seconds": round(seconds, 3),
                },
                indent=2,
            )
        )
    return points


def is_indices_document(path: Path) -> bool:
    """``path`` is a file :func:`indices_from_label_maps` wrote: JSON of just its ``indices`` and its
    ``provenance`` (CardiacMTL, the ED and ES label maps), the only kind ``--overwrite`` replaces."""
    if path.stat().st_size > 1 << 20:
        return False
    document = json.loads(path.read_text())
    if not isinstance(document, dict) or set(document) != {"indices", "provenance"}:
        return False
    provenance = document["provenance"]
    return (
        isinstance(provenance, dict)
        and str(provenance.get("software", "")).startswith("CardiacMTL")
        and {"ED labels", "ES labels"} <= set(provenance)
    )


def indices_from_label_maps(
    ed_path: str | Path,
    es_path: str | Path,
    out_path: str | Path,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    overwrite: bool = False,
) -> dict:
    """``cardiac-mtl indices``: the clinical indices of given ED and ES label maps, written to ``out_path``
    (JSON: ``indices`` and ``provenance``) and returned; ``overwrite`` replaces only such a file an
    earlier call wrote, never another."""
    height_cm, weight_kg, _ = checked_patient(height_cm, weight_kg, None)
    check_output_file(
        out_path, inputs=(ed_path, es_path), overwrite=overwrite, written_by_project=is_indices_document
    )
    (ed, spacing_ed, _), (es, spacing_es, _) = read_label_map(ed_path), read_label_map(es_path)
    if not np.allclose(spacing_ed, spacing_es, rtol=1e-4):
        raise CardiacInputError(
            f"{ed_path} and {es_path} have different spacings: {spacing_ed} vs {spacing_es}"
        )
    indices = compute_indices(ed, es, spacing_ed, height_cm=height_cm, weight_kg=weight_kg)
    document = {
        "indices": indices,
        "provenance": {
            "software": f"CardiacMTL {__version__}",
            "ED labels": str(ed_path),
            "ES labels": str(es_path),
        },
    }
    write_json_atomic(document, Path(out_path))
    return document
