"""The result folder of ``analyze``: label maps, ``indices.csv``/``indices.json``, the report and the landmark files, written in one staged folder under the output policy."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from CardiacMTLLib.atomic import json_safe, staged_folder
from CardiacMTLLib.io.landmarks import write_landmark_files
from CardiacMTLLib.io.nifti import write_label_map
from CardiacMTLLib.report.figures import write_report
from CardiacMTLLib.report.text import qc_line
from CardiacMTLLib.types import CLASSES, AnalysisResult, Cine, label_names_document


def _segmentation_names(cine: Cine) -> list[str]:
    """One file per input image for ACDC frame files, else one (3D or 4D) label map for the cine."""
    stems = cine.image_stems or [Path(cine.source).name.split(".")[0] or "cine"]
    if len(stems) == cine.num_frames and cine.num_frames > 1:
        return [f"{stem}_seg.nii.gz" for stem in stems]
    return [f"{stems[0]}_seg.nii.gz"]


def diagnosis_columns(diagnosis: dict | None) -> dict:
    """The diagnosis as flat ``indices.csv`` columns (class, one probability per class, model, criteria)."""

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


def indices_csv_text(result: AnalysisResult) -> str:
    """``indices.csv`` of ``result``: one row of the indices, the diagnosis columns, the QC findings and
    the provenance (what the result folder holds and a browser downloads)."""
    row = dict(result.indices)
    row.update(diagnosis_columns(result.diagnosis))
    row["QC findings"] = "; ".join(qc_line(f) for f in result.qc)
    row.update({f"provenance: {k}": v for k, v in result.provenance.items()})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(row))
    writer.writeheader()
    writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return text.getvalue()


# 2: ``schema_version`` itself; ``provenance`` gains ``strain_s`` (always), ``plausibility`` (when the
# diagnosis is withheld), ``edited_frames`` (after a person's corrections) and ``sex`` (when recorded); QC findings about the whole
# study have ``"frame": null``. Every key of version 1 keeps its name and meaning.
SCHEMA_VERSION = 2


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
        (staging / "indices.csv").write_text(indices_csv_text(result), newline="")
        document = {
            "schema_version": SCHEMA_VERSION,
            "indices": result.indices,
            "volume_curve_ml": {"frames": result.cine.frame_numbers, **result.volume_curve_ml},
            "segmentation_files": [f"segmentation/{n}" for n in names],
            "labels": label_names_document(),
            "diagnosis": result.diagnosis,
            "qc": result.qc,
            "provenance": result.provenance,
        }
        (staging / "indices.json").write_text(json.dumps(json_safe(document), indent=2))
        write_report(result, staging / "report.png")
        write_landmark_files(result.landmarks, staging)
        if result.strain is not None:
            write_strain_files(result.strain, staging)
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


def write_strain_files(strain, folder: Path) -> None:
    """``strain.json`` (global and per AHA segment: peaks, times to peak, curves, thickening, wall motion and
    the rule) and ``strain.csv`` (one row per region and frame) of a ``StrainResult``."""
    (folder / "strain.json").write_text(json.dumps(json_safe(strain.to_dict()), indent=2))
    rows = strain.to_rows()
    with open(folder / "strain.csv", "w", newline="") as f:
        writer = csv.DictWriter(
            f,
            fieldnames=["region", "frame", "time_ms", "frames_from_ed", "radial_pct", "circumferential_pct"],
        )
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
