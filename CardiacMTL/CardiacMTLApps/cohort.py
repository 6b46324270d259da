"""A cohort on disk: its studies (a folder of studies or a CSV manifest), the status record each study
leaves in the output folder, and the cohort table (CSV and Parquet) made from them. ``batch`` runs it."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.acdc import acdc_frame_files
from CardiacMTLLib.io.cine import checked_sex
from CardiacMTLLib.io.nifti import is_nifti, nifti_stem
from CardiacMTLLib.io.patient import checked_body_size

STATUS_OK, STATUS_FAILED, STATUS_PENDING = "ok", "failed", "pending"
# a study's own fault (unreadable file, wrong geometry): kept on resume unless asked to retry; a worker's
# fault (it died, the model could not be loaded there): always redone on resume
FAILURE_STUDY, FAILURE_WORKER = "study", "worker"
MANIFEST_COLUMNS = ("study_id", "path", "height_cm", "weight_kg", "sex")
LABEL_MAP_SUFFIXES = ("_gt", "_seg")
_STUDY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Study:
    """One study of a cohort: an id (its output folder's name) and the input ``read_cine`` reads."""

    study_id: str
    path: Path
    kind: str = "unknown"  # acdc | nifti | dicom | unknown (a manifest entry that is not there yet)
    height_cm: float | None = None
    weight_kg: float | None = None
    sex: str | None = None  # M or F


# --------------------------------------------------------------------------------------------------
# the studies of a cohort


def _study_kind(path: Path) -> str | None:
    """``acdc``, ``nifti`` or ``dicom`` for something that can be a study, ``None`` for anything else."""

    if path.is_file():
        # label maps beside their images (ACDC's ``_gt``, our ``_seg``) are not studies
        return "nifti" if is_nifti(path) and not nifti_stem(path).endswith(LABEL_MAP_SUFFIXES) else None
    if path.is_dir():
        if (path / "Info.cfg").is_file() or acdc_frame_files(path):
            return "acdc"
        return "dicom"  # any other folder: read_cine looks for a DICOM cine in it and says so if none
    return None


def _study_id_of(path: Path) -> str:

    name = nifti_stem(path) if is_nifti(path) else path.name
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def check_unique_ids(studies: list[Study], source: Path) -> None:
    seen: dict[str, Path] = {}
    for study in studies:
        if study.study_id in seen:
            raise CardiacInputError(
                f"{source}: study id {study.study_id!r} is used twice ({seen[study.study_id]} and "
                f"{study.path}); every study needs its own id (its output folder's name)"
            )
        seen[study.study_id] = study.path


def _manifest_number(value: str, column: str, path: Path, line: int) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError as e:
        raise CardiacInputError(f"{path} line {line}: {column} must be a number, got {value!r}") from e
    return checked_body_size(column.split("_")[0], number, f"{path} line {line}: {column}")


def read_manifest(path: str | Path) -> list[Study]:
    """Studies of a CSV manifest with columns ``study_id,path[,height_cm,weight_kg,sex]`` (header required).

    Relative paths are taken relative to the manifest's folder. Height, weight and sex (M or F), when
    given, override what the input says (as ``analyze --height/--weight/--sex`` do).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = [c.strip() for c in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CardiacInputError(f"{path}: cannot read the manifest ({e})") from e
    if not rows:
        raise CardiacInputError(
            f"{path}: the manifest has no studies (expected a header line and one row each)"
        )
    unknown = [c for c in header if c not in MANIFEST_COLUMNS]
    missing = [c for c in ("study_id", "path") if c not in header]
    if missing or unknown:
        raise CardiacInputError(
            f"{path}: manifest columns must be study_id,path[,height_cm,weight_kg,sex]; found {header}"
            + (f" (missing {missing})" if missing else "")
            + (f" (unknown {unknown})" if unknown else "")
        )
    studies = []
    for line, raw in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        study_id, location = row.get("study_id", ""), row.get("path", "")
        if not _STUDY_ID_RE.match(study_id):
            raise CardiacInputError(
                f"{path} line {line}: study_id must start with a letter or digit and hold only letters, "
                f"digits, '.', '_' and '-', got {study_id!r}"
            )
        if not location:
            raise CardiacInputError(f"{path} line {line}: study {study_id!r} has no path")
        study_path = Path(location).expanduser()
        if not study_path.is_absolute():
            study_path = path.parent / study_path
        studies.append(
            Study(
                study_id=study_id,
                path=study_path.resolve(),
                kind=_study_kind(study_path) or "unknown",
                height_cm=_manifest_number(row.get("height_cm"), "height_cm", path, line),
                weight_kg=_manifest_number(row.get("weight_kg"), "weight_kg", path, line),
                sex=_manifest_sex(row.get("sex"), path, line),
            )
        )
    check_unique_ids(studies, path)
    return studies


def _manifest_sex(value: str | None, path: Path, line: int) -> str | None:
    if not value:
        return None
    try:
        return checked_sex(value)
    except CardiacInputError as e:
        raise CardiacInputError(f"{path} line {line}: {e} (or empty)") from e


def discover_studies(source: str | Path) -> tuple[list[Study], list[Path]]:
    """The studies of a cohort and the entries that are not studies (reported, not analysed).

    ``source`` is a CSV manifest (see :func:`read_manifest`) or a folder whose entries are studies: ACDC
    patient folders, NIfTI cines (``<study_id>.nii[.gz]``) and DICOM study folders, in any mix; hidden
    entries are ignored, and other files and NIfTI label maps (``*_gt``, ``*_seg``) are returned as
    not-studies. A folder's entry name is its study
    id (characters other than letters, digits, ``.``, ``_``, ``-`` become ``_``).
    """
    source = Path(source)
    if not source.exists():
        raise CardiacInputError(f"{source}: not found; expected a folder of studies or a CSV manifest")
    if source.is_file():
        if source.suffix.lower() == ".csv":
            return read_manifest(source), []
        raise CardiacInputError(
            f"{source}: expected a folder of studies or a CSV manifest (study_id,path[,height_cm,weight_kg,sex]), "
            "found a single file; `cardiac-mtl analyze` analyses one study"
        )
    if _study_kind(source) == "acdc":
        raise CardiacInputError(
            f"{source}: this is one study (an ACDC patient folder); give the folder that holds the studies, "
            "or a CSV manifest, or analyse it alone with `cardiac-mtl analyze`"
        )
    studies, ignored = [], []
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        kind = _study_kind(entry)
        if kind is None:
            ignored.append(entry)
            continue
        studies.append(Study(study_id=_study_id_of(entry), path=entry.resolve(), kind=kind))
    if not studies:
        raise CardiacInputError(
            f"{source}: found no studies (expected ACDC patient folders, NIfTI cines or DICOM study folders "
            f"as its entries, found {len(ignored)} other file(s))"
        )
    check_unique_ids(studies, source)
    return studies, ignored


# --------------------------------------------------------------------------------------------------
# the output folder: per-study results and records


def studies_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "studies"


def status_path(out_dir: Path, study_id: str) -> Path:
    return Path(out_dir) / "status" / f"{study_id}.json"


def read_status(out_dir: Path, study_id: str) -> dict | None:
    """The status record of a study, or ``None`` when there is none (never run, or interrupted)."""
    path = status_path(out_dir, study_id)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable: treat as unfinished, the study is redone and the record replaced


def is_done(study: Study, out_dir: Path) -> bool:
    """An ok record for this input, with its results in place."""
    record = read_status(out_dir, study.study_id)
    return (
        record is not None
        and record.get("path") == str(study.path)
        and record.get("status") == STATUS_OK
        and (studies_dir(out_dir) / study.study_id / "indices.json").is_file()
    )


def is_finished(study: Study, out_dir: Path, retry_failed: bool = False) -> bool:
    """Whether a re-run skips ``study``: it has a record for the same input that says ok (with its results
    in place) or failed through its own fault (unless ``retry_failed``)."""
    if is_done(study, out_dir):
        return True
    record = read_status(out_dir, study.study_id)
    if record is None or record.get("path") != str(study.path):
        return False
    if record.get("status") == STATUS_FAILED:
        return record.get("failure") == FAILURE_STUDY and not retry_failed
    return False


def remove_leftovers(out_dir: Path) -> int:
    """Delete the staging folders and files of writes that were killed part-way; their number."""
    removed = 0
    for folder, pattern in ((studies_dir(out_dir), ".*"), (Path(out_dir) / "status", ".*.partial")):
        if not folder.is_dir():
            continue
        for leftover in folder.glob(pattern):
            if ".partial" in leftover.name or ".old-" in leftover.name:
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
                removed += 1
    return removed


# --------------------------------------------------------------------------------------------------
# the cohort table


HEAD_COLUMNS = ("study_id", "path", "kind", "status", "failure", "error")
TIMING_KEYS = ("read", "analyze", "segmentation", "indices", "diagnosis", "write", "total")
TAIL_COLUMNS = ("device", *(f"{k}_s" for k in TIMING_KEYS), "worker", "finished_at")


def _strain_columns(study_dir: Path) -> dict:
    """GCS, GRS, the akinetic segments and the segments strain could not measure (not followed to ES) of a
    study's ``strain.json`` (empty without one: no strain)."""
    path = study_dir / "strain.json"
    if not path.exists():
        return {}
    strain = json.loads(path.read_text())
    akinetic = strain.get("akinetic_segments") or []
    return {
        "GCS (%)": strain.get("global_circumferential_pct"),
        "GRS (%)": strain.get("global_radial_pct"),
        "Akinetic segments (n)": len(akinetic),
        "Akinetic segments": " ".join(str(s) for s in akinetic),
        "Unmeasured segments": " ".join(str(s) for s in strain.get("unmeasured_segments") or []),
    }


def _indices_row(study_dir: Path) -> dict:
    document = json.loads((study_dir / "indices.json").read_text())
    row = dict(document.get("indices") or {})
    diagnosis = document.get("diagnosis") or {}
    if diagnosis:
        row["Diagnosis"] = diagnosis.get("class")
        for cls, p in (diagnosis.get("probabilities") or {}).items():
            row[f"P({cls})"] = p
        if diagnosis.get("error"):
            row["Diagnosis error"] = diagnosis["error"]
    row.update(_strain_columns(study_dir))
    row["QC findings"] = len(document.get("qc") or [])
    row["device"] = (document.get("provenance") or {}).get("device")
    return row


def cohort_rows(studies: Sequence[Study], out_dir: Path) -> list[dict]:
    """One row per study, from its status record and ``indices.json``: never more, whatever happened."""
    rows = []
    for study in studies:
        record = read_status(out_dir, study.study_id)
        if record is not None and record.get("path") != str(study.path):
            record = None  # a record of another input under this id: this study has not run yet
        row = {
            "study_id": study.study_id,
            "path": str(study.path),
            "kind": study.kind,
            "status": STATUS_PENDING if record is None else record.get("status"),
            "failure": None if record is None else record.get("failure"),
            "error": None if record is None else record.get("error"),
        }
        if record is not None and record.get("status") == STATUS_OK:
            try:
                row.update(_indices_row(studies_dir(out_dir) / study.study_id))
            except (OSError, ValueError) as e:
                row.update(status=STATUS_PENDING, error=f"results unreadable ({e}); re-run to redo")
        timings = {} if record is None else record.get("timings_s") or {}
        for key in TIMING_KEYS:
            row[f"{key}_s"] = timings.get(key)
        row["worker"] = None if record is None else record.get("worker")
        row["finished_at"] = None if record is None else record.get("finished_at")
        rows.append(row)
    return rows


def _column_array(values: list):
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def write_cohort_table(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """``cohort.csv`` and ``cohort.parquet`` (the same columns), each renamed into place when complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    seen: list[str] = []
    for row in rows:
        seen.extend(k for k in row if k not in seen)
    # who and what first, then the measurements, then how it ran
    head = [c for c in HEAD_COLUMNS if c in seen]
    tail = [c for c in TAIL_COLUMNS if c in seen]
    columns = head + [c for c in seen if c not in head and c not in tail] + tail
    csv_path, parquet_path = out_dir / "cohort.csv", out_dir / "cohort.parquet"
    staging_csv = out_dir / ".cohort.csv.partial"
    with open(staging_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    os.replace(staging_csv, csv_path)
    table = pa.table({name: _column_array([row.get(name) for row in rows]) for name in columns})
    staging_parquet = out_dir / ".cohort.parquet.partial"
    pq.write_table(table, staging_parquet)
    os.replace(staging_parquet, parquet_path)
    return csv_path, parquet_path
