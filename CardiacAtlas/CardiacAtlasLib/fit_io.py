"""The ``fit`` action's files: an ``analyze`` output folder or a guide-point folder in, a fit folder out.

A fit folder holds ``lv_model_<key>.vtk`` per fitted frame (``ED``, ``ES`` and, with ``all_frames``,
``frameNNN``; see ``mesh.py``) and ``fit.json``: one summary per phase (residuals, slice shifts, volumes,
pose; ``frames`` with every frame), the ``input`` it was fitted to and the ``model`` description. It is
written into a temporary folder and moved into place only when complete. The fitting itself is
``fit.py`` (label maps) and ``guidepoints.py`` (CAP/biv-me guide points); this module only reads and
writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from CardiacAtlasLib import __version__
from CardiacAtlasLib.contours import metric_affine
from CardiacAtlasLib.fit import FitOptions, FitResult, fit_label_frames, model_description
from CardiacAtlasLib.guidepoints import fit_guidepoint_folder
from CardiacAtlasLib.mesh import write_lv_mesh
from CardiacMTLLib.atomic import check_output_folder, json_safe, staged_folder
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.documents import read_json_document
from CardiacMTLLib.io.guidepoints import is_guidepoint_folder
from CardiacMTLLib.io.landmarks import read_landmarks_file
from CardiacMTLLib.io.nifti import read_nifti

FIT_JSON = "fit.json"
LANDMARK_FILES = ("landmarks.json", "landmarks.mrk.json")


def read_analysis_landmarks(folder: Path) -> tuple[list[dict] | None, str | None]:
    """Landmark dicts (``label``, ``frame``, ``ras`` or ``ijk``) of an analyze folder and the file's name:
    ``landmarks.json`` or else ``landmarks.mrk.json``, read by CardiacMTL's own landmark reader."""
    for name in LANDMARK_FILES:
        path = folder / name
        if path.is_file():
            points = read_landmarks_file(path)
            if not all(isinstance(p, dict) and "label" in p and ("ijk" in p or "ras" in p) for p in points):
                raise CardiacInputError(
                    f"{path}: expected a list of landmarks with 'label' and 'ijk' or 'ras'"
                )
            return points, path.name
    return None, None


def read_analysis_folder(analysis_dir: str | Path):
    """``(labels (frames, slices, rows, cols), affine, frame_numbers, ed_index, es_index, landmarks)``
    from an ``analyze`` output folder (``indices.json`` + ``segmentation/``)."""
    folder = Path(analysis_dir)
    manifest = folder / "indices.json"
    document = read_json_document(manifest, "an analyze output folder")
    try:
        files = [folder / f for f in document["segmentation_files"]]
        frames = [int(f) for f in document["volume_curve_ml"]["frames"]]
        ed_frame = int(document["indices"]["ED frame"])
        es_value = document["indices"].get("ES frame")
        es_frame = ed_frame if es_value is None else int(es_value)
    except (KeyError, TypeError, ValueError) as e:
        raise CardiacInputError(
            f"{manifest}: expected segmentation_files, volume_curve_ml.frames and the ED/ES frames ({e})"
        ) from e
    volumes, affine, spacing = [], None, None
    for path in files:
        array, affine_here, zooms, _ = read_nifti(path)
        spacing = zooms[:3] if spacing is None else spacing
        array = np.asarray(array)
        if array.ndim == 3:
            array = array[..., None]
        if array.ndim != 4:
            raise CardiacInputError(f"{path}: expected a 3D or 4D label map, found shape {array.shape}")
        volumes.append(np.transpose(array, (3, 2, 1, 0)))
        affine = affine_here if affine is None else affine
    labels = np.concatenate(volumes).astype(np.uint8)
    if len(labels) != len(frames):
        raise CardiacInputError(
            f"{manifest}: {len(frames)} frames listed but the segmentation files hold {len(labels)}"
        )
    for name, frame in (("ED", ed_frame), ("ES", es_frame)):
        if frame not in frames:
            raise CardiacInputError(f"{manifest}: {name} frame {frame} is not among the frames {frames}")
    landmarks, _ = read_analysis_landmarks(folder)
    affine = metric_affine(affine, spacing)
    return labels, affine, frames, frames.index(ed_frame), frames.index(es_frame), landmarks


def fit_analysis_folder(
    analysis_dir: str | Path,
    out_dir: str | Path | None = None,
    all_frames: bool = False,
    options: FitOptions | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, FitResult]:
    """Fit the model to an ``analyze`` output folder; write ``out_dir`` (models + ``fit.json``) when given."""
    labels, affine, frames, ed, es, landmarks = read_analysis_folder(analysis_dir)
    results = fit_label_frames(
        labels, affine, frames, ed, es, landmarks, all_frames, options, str(analysis_dir), progress
    )
    if out_dir is not None:
        write_fit_folder(
            results,
            out_dir,
            {"path": str(Path(analysis_dir).resolve()), "kind": "analyze output (segmentation)"},
            options,
            overwrite=overwrite,
        )
    return results


def fit_document(results: dict[str, FitResult], input_info: dict, options: FitOptions | None = None) -> dict:
    """The ``fit.json`` document: ``ED``, ``ES`` (and ``frames`` with ``--all-frames``), input, model."""
    document = {key: r.summary for key, r in results.items() if key in ("ED", "ES")}
    frames = {key: r.summary for key, r in results.items() if key not in ("ED", "ES")}
    if frames:
        document["frames"] = frames
    document["input"] = input_info
    document["model"] = model_description(options)
    document["written_by"] = f"CardiacAtlasLib {__version__}"
    return document


def write_fit_folder(
    results: dict[str, FitResult],
    out_dir: str | Path,
    input_info: dict,
    options: FitOptions | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``lv_model_<key>.vtk`` per result and ``fit.json`` into ``out_dir`` atomically (``overwrite``:
    replace an earlier fit there; see :func:`CardiacMTLLib.atomic.check_output_folder`)."""
    with staged_folder(out_dir, overwrite=overwrite) as staging:
        for key, result in results.items():
            write_lv_mesh(result.mesh, staging / f"lv_model_{key}.vtk")
        document = fit_document(results, input_info, options)
        (staging / FIT_JSON).write_text(json.dumps(json_safe(document), indent=2))
    return Path(out_dir).resolve()


def fit_path(
    path: str | Path,
    out_dir: str | Path,
    all_frames: bool = False,
    options: FitOptions | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, FitResult]:
    """The ``fit`` action: an ``analyze`` output folder or a guide-point folder → ``out_dir``."""
    path = Path(path)
    if not path.is_dir():
        raise CardiacInputError(f"{path}: not a folder (expected an analyze output or a guide-point folder)")
    check_output_folder(out_dir, inputs=(path,), overwrite=overwrite)
    if is_guidepoint_folder(path):
        results, input_info = fit_guidepoint_folder(path, all_frames, options, progress)
        write_fit_folder(results, out_dir, input_info, options, overwrite=overwrite)
        return results
    if (path / "indices.json").is_file():
        return fit_analysis_folder(path, out_dir, all_frames, options, progress, overwrite)
    raise CardiacInputError(
        f"{path}: neither an analyze output folder (indices.json + segmentation/) nor a guide-point folder "
        "(GPFile_NNN.txt + SliceInfoFile.txt)"
    )
