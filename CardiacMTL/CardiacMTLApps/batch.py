"""Cohort analysis on ``dask.distributed``: one :func:`~CardiacMTLLib.pipeline.analyze` per study, resumable.

A cohort is a batch of independent studies. :func:`discover_studies` turns a folder of studies (ACDC
patient folders, NIfTI cines, DICOM study folders, mixed) or a CSV manifest (``study_id,path[,height_cm,
weight_kg]``) into :class:`Study` entries; :func:`run_batch` sends them to a Dask cluster (a
``LocalCluster`` of worker processes by default, or an existing scheduler) as futures. Every worker loads
the segmentation model once (:class:`ModelPlugin`, backed by a per-process cache) with torch's intra-op
threads set to the worker's thread count, and runs :func:`process_study`, which writes the study's results
into ``DIR/studies/<study_id>/`` exactly as ``analyze`` does (through the atomic
:func:`~CardiacMTLLib.pipeline.write_outputs`) and then a small status record ``DIR/status/<study_id>.json``
(ok or failed, the error, timings), also renamed into place. Re-running resumes: a study with an ``ok``
record and its results is skipped; one without a record (interrupted, or its worker died) is redone. A
worker that dies has its study rescheduled by Dask; since each study has one folder and one record, both
replaced atomically, and the cohort table is built from the records of the listed studies, a study can be
neither lost nor counted twice. ``DIR/cohort.csv`` and ``DIR/cohort.parquet`` hold one row per study.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distributed import WorkerPlugin

from CardiacMTLLib import __version__
from CardiacMTLLib.analysis.diagnosis.classifiers import load_classifier
from CardiacMTLLib.atomic import claim_folder, write_json_atomic
from CardiacMTLLib.errors import CardiacError, CardiacInputError
from CardiacMTLLib.io.acdc import acdc_frame_files
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.io.nifti import is_nifti, nifti_stem
from CardiacMTLLib.models.registry import load_model, load_once, resolve_model_dir

MANIFEST_COLUMNS = ("study_id", "path", "height_cm", "weight_kg")
STATUS_OK, STATUS_FAILED, STATUS_PENDING = "ok", "failed", "pending"
# a study's own fault (unreadable file, wrong geometry): kept on resume unless asked to retry; a worker's
# fault (it died, the model could not be loaded there): always redone on resume
FAILURE_STUDY, FAILURE_WORKER = "study", "worker"
PLUGIN_NAME = "cardiac-mtl-model"
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


@dataclass
class BatchSummary:
    """What :func:`run_batch` did: counts, the ids it processed this time, where the table is."""

    total: int
    skipped: int
    processed: list[str]
    ok: int
    failed: int
    pending: int
    wall_s: float
    failures: dict[str, str] = field(default_factory=dict)
    cohort_csv: Path | None = None
    cohort_parquet: Path | None = None
    workers: int = 0

    @property
    def studies_per_minute(self) -> float:
        return 60.0 * len(self.processed) / self.wall_s if self.wall_s > 0 else float("nan")

    def describe(self) -> str:
        lines = [
            f"{self.total} studies: {self.ok} ok, {self.failed} failed"
            + (f", {self.pending} not finished" if self.pending else "")
            + f" ({self.skipped} already done, skipped; {len(self.processed)} processed now)",
        ]
        if self.processed:
            lines.append(
                f"{len(self.processed)} studies in {self.wall_s:.1f} s on {self.workers} worker(s): "
                f"{self.studies_per_minute:.1f} studies/min"
            )
        for study_id, error in list(self.failures.items())[:20]:
            lines.append(f"  failed {study_id}: {error}")
        if len(self.failures) > 20:
            lines.append(f"  ... and {len(self.failures) - 20} more failures (see the cohort table)")
        if self.cohort_csv is not None:
            lines.append(f"cohort table: {self.cohort_csv} and {self.cohort_parquet}")
        return "\n".join(lines)


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


def _check_unique(studies: list[Study], source: Path) -> None:
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
    if not (math.isfinite(number) and number > 0):
        raise CardiacInputError(f"{path} line {line}: {column} must be a positive number, got {value!r}")
    return number


def read_manifest(path: str | Path) -> list[Study]:
    """Studies of a CSV manifest with columns ``study_id,path[,height_cm,weight_kg]`` (header required).

    Relative paths are taken relative to the manifest's folder. Height and weight, when given, override
    what the input says (as ``analyze --height/--weight`` do).
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
            f"{path}: manifest columns must be study_id,path[,height_cm,weight_kg]; found {header}"
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
            )
        )
    _check_unique(studies, path)
    return studies


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
            f"{source}: expected a folder of studies or a CSV manifest (study_id,path[,height_cm,weight_kg]), "
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
    _check_unique(studies, source)
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


def _is_done(study: Study, out_dir: Path) -> bool:
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
    if _is_done(study, out_dir):
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
# on the workers


class _SerialNet:
    """The network behind a per-worker lock: a worker's task threads share its torch threads, so one
    forward pass at a time uses all of them instead of each task oversubscribing the cores."""

    def __init__(self, net, lock: threading.Lock):
        self._net, self._lock = net, lock

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self._net(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._net, name)


def worker_model(
    device: str = "auto", model_dir: str | None = None, threads: int | None = None, precision: str = "auto"
):
    """The segmentation model and diagnosis classifier of this process, loaded on first use only (through
    the registry's one load-once cache).

    ``threads`` sets torch's intra-op threads (a worker passes its thread count). Returns
    ``(model, classifier, load_seconds)``; ``load_seconds`` is 0 when they were already loaded.
    """
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    loaded = []

    def prepare():
        loaded.append(True)
        model = load_model(model_dir, device=device, precision=precision, cached=False)
        # the worker's threads share one network: inference on it is serialised
        model = dataclasses.replace(model, net=_SerialNet(model.net, threading.Lock()))
        classifier = load_classifier()
        # the classifier fits its ensembles lazily, a few seconds on a busy core: fit them here so that
        # they, like the network, are paid for once per worker and never inside a study's timings
        classifier.fit_all()
        # what the pipeline imports on first use (the report's matplotlib above all) is paid for here,
        # once per worker, not by its first study
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401

        return model, classifier

    t0 = time.perf_counter()
    folder = resolve_model_dir(model_dir)
    model, classifier = load_once("batch worker", folder, device, precision, prepare)
    return model, classifier, (time.perf_counter() - t0) if loaded else 0.0


class ModelPlugin(WorkerPlugin):
    """Dask worker plugin: loads the model once when a worker starts (restarted workers included).

    Registered with ``client.register_plugin``; it sets torch's intra-op threads to the worker's thread
    count and fills :func:`worker_model`'s cache, so no study pays for the model load.
    """

    name = PLUGIN_NAME

    def __init__(self, device: str = "auto", model_dir: str | None = None, precision: str = "auto"):
        self.device, self.model_dir, self.precision = device, model_dir, precision

    def setup(self, worker) -> None:
        worker_model(self.device, self.model_dir, threads=worker.state.nthreads, precision=self.precision)


def _worker_identity() -> dict:
    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):
        address = None
    return {"worker": address, "host": socket.gethostname(), "pid": os.getpid()}


def _failure_record(study: Study, failure: str, error: str, error_type: str, timings: dict) -> dict:
    return {
        "study_id": study.study_id,
        "path": str(study.path),
        "kind": study.kind,
        "status": STATUS_FAILED,
        "failure": failure,
        "error": error,
        "error_type": error_type,
        "timings_s": timings,
        **_worker_identity(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "software": f"CardiacMTL {__version__}",
    }


def process_study(
    study: Study,
    out_dir: str,
    device: str = "auto",
    model_dir: str | None = None,
    fit_lv_model: bool = False,
    precision: str = "auto",
) -> dict:
    """Analyse one study on this process's model and write its results and status record atomically.

    With ``fit_lv_model`` the LV finite-element model is fitted too and written to the study's
    ``lv_model/`` folder, so that ``cardiac-atlas build OUT`` builds the cohort's atlas.

    Any error of the study is caught and recorded as a failure (the batch goes on); only the death of the
    process itself escapes, and Dask reschedules the study. Returns the status record.
    """
    from CardiacMTLApps.workflows import fit_lv, write_result_folder
    from CardiacMTLLib.pipeline import analyze

    out_dir = Path(out_dir)
    if _is_done(study, out_dir):
        # a second attempt at a finished study (its worker died after writing, before reporting; or a
        # cancelled task of an interrupted run still going): its results stand, nothing is written again
        return read_status(out_dir, study.study_id)
    t0 = time.perf_counter()
    timings: dict = {}
    try:
        model, classifier, load_s = worker_model(device, model_dir, precision=precision)
    except Exception as e:  # the worker cannot run anything: not the study's fault, redone on resume
        record = _failure_record(study, FAILURE_WORKER, f"model not available: {e}", type(e).__name__, {})
        write_json_atomic(record, status_path(out_dir, study.study_id), indent=1)
        return record
    timings["model_load"] = round(load_s, 3)
    try:
        t = time.perf_counter()
        cine = read_cine(study.path, height_cm=study.height_cm, weight_kg=study.weight_kg)
        timings["read"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        result = analyze(cine, model=model, device=device, classifier=classifier)
        if fit_lv_model:
            fit_lv(result)
        timings["analyze"] = round(time.perf_counter() - t, 3)
        for key in ("segmentation_s", "indices_s", "diagnosis_s", "landmarks_s", "lv_fit_s"):
            if result.provenance.get(key) is not None:
                timings[key[:-2]] = result.provenance[key]
        t = time.perf_counter()
        write_result_folder(result, studies_dir(out_dir) / study.study_id, overwrite=True)
        timings["write"] = round(time.perf_counter() - t, 3)
    except Exception as e:
        timings["total"] = round(time.perf_counter() - t0, 3)
        message = str(e) if isinstance(e, CardiacError) else f"{type(e).__name__}: {e}"
        if str(study.path) not in message:
            message = f"{study.path}: {message}"
        record = _failure_record(study, FAILURE_STUDY, message, type(e).__name__, timings)
        if _is_done(study, out_dir):  # another attempt finished it meanwhile: keep its record
            return read_status(out_dir, study.study_id)
        write_json_atomic(record, status_path(out_dir, study.study_id), indent=1)
        return record
    timings["total"] = round(time.perf_counter() - t0, 3)
    record = {
        "study_id": study.study_id,
        "path": str(study.path),
        "kind": study.kind,
        "status": STATUS_OK,
        "failure": None,
        "error": None,
        "error_type": None,
        "timings_s": timings,
        **_worker_identity(),
        "device": result.provenance.get("device"),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "software": f"CardiacMTL {__version__}",
    }
    # the results are complete and in place before the record says so: a death in between means redo
    write_json_atomic(record, status_path(out_dir, study.study_id), indent=1)
    return record


# --------------------------------------------------------------------------------------------------
# the cohort table


HEAD_COLUMNS = ("study_id", "path", "kind", "status", "failure", "error")
TIMING_KEYS = ("read", "analyze", "segmentation", "indices", "diagnosis", "write", "total")
TAIL_COLUMNS = ("device", *(f"{k}_s" for k in TIMING_KEYS), "worker", "finished_at")


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


# --------------------------------------------------------------------------------------------------
# the driver


def register_model_plugin(
    client, device: str = "auto", model_dir: str | None = None, precision: str = "auto"
) -> None:
    """Load the model on every worker of ``client``'s cluster now, and on every worker that joins later."""
    client.register_plugin(ModelPlugin(device, None if model_dir is None else str(model_dir), precision))


def start_local_cluster(workers: int, threads_per_worker: int = 1):
    """A ``LocalCluster`` of ``workers`` processes with ``threads_per_worker`` threads each, and its client."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    if workers < 1 or threads_per_worker < 1:
        raise CardiacInputError(
            f"--workers and --threads-per-worker must be at least 1, got {workers} and {threads_per_worker}"
        )
    # Dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536 to its workers. Setting that variable switches off
    # glibc's dynamic mmap threshold, so every large tensor torch allocates becomes an mmap/munmap pair with
    # fresh page faults: segmentation ran about 50 % slower inside a worker than in a plain process. The
    # workers keep glibc's defaults (a user's own MALLOC_TRIM_THRESHOLD_ in the environment still wins).
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    return cluster, Client(cluster)


def _progress(total: int, skipped: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="studies" + (f" ({skipped} done before)" if skipped else ""),
        unit="study",
        disable=not enabled,
        dynamic_ncols=True,
    )


def _worker_death_record(study: Study, exc: BaseException, out_dir: Path) -> dict:
    record = _failure_record(
        study,
        FAILURE_WORKER,
        f"{study.path}: the worker process died while analysing it, too often to retry "
        f"({type(exc).__name__}: {exc}); re-run to try again",
        type(exc).__name__,
        {},
    )
    write_json_atomic(record, status_path(out_dir, study.study_id), indent=1)
    return record


def run_batch(
    studies: Sequence[Study],
    out_dir: str | Path,
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    device: str = "auto",
    model_dir: str | Path | None = None,
    retries: int = 2,
    retry_failed: bool = False,
    fit_lv_model: bool = False,
    progress: bool = True,
    precision: str = "auto",
    on_study_done: Callable[[dict], None] | None = None,
) -> BatchSummary:
    """Analyse every unfinished study on a Dask cluster; write ``cohort.csv``/``cohort.parquet`` at the end.

    The cluster is ``client``'s when given, else the one at ``scheduler`` (an address such as
    ``tcp://host:8786``), else a new ``LocalCluster`` with ``workers`` processes (default: the CPU count
    divided by ``threads_per_worker``) that is closed at the end. ``retries`` is Dask's re-run count for a
    task that raises past :func:`process_study`; a study whose worker dies is rescheduled by the scheduler
    (up to ``distributed.scheduler.allowed-failures`` deaths, then recorded as a worker failure).
    ``on_study_done(record)`` is called in this process after each study (a GUI's progress hook).
    Interrupting (Ctrl-C) cancels the rest; the table then marks them ``pending`` and a re-run resumes.
    """
    from distributed import Client, as_completed

    studies = list(studies)
    # a batch folder is resumable: its own earlier results are kept, anyone else's folder is refused
    out_dir = claim_folder(out_dir, inputs=[s.path for s in studies], overwrite=True)
    _check_unique(studies, out_dir)
    studies_dir(out_dir).mkdir(parents=True, exist_ok=True)
    (out_dir / "status").mkdir(parents=True, exist_ok=True)
    todo = [s for s in studies if not is_finished(s, out_dir, retry_failed)]
    skipped = len(studies) - len(todo)
    processed: list[str] = []
    own_cluster = own_client = None
    t0 = time.perf_counter()
    n_workers = 0
    futures: dict = {}
    completed = False
    try:
        if todo:
            if client is None and scheduler:
                client = own_client = Client(scheduler)
            elif client is None:
                workers = workers or max(1, (os.cpu_count() or 1) // max(1, threads_per_worker))
                own_cluster, client = start_local_cluster(workers, threads_per_worker)
                own_client = client
            register_model_plugin(client, device, model_dir, precision)
            n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
            t0 = time.perf_counter()  # throughput counts studies, not cluster start and model loads
            token = f"{time.time_ns():x}"
            for study in todo:
                future = client.submit(
                    process_study,
                    study,
                    str(out_dir),
                    device,
                    None if model_dir is None else str(model_dir),
                    fit_lv_model,
                    precision,
                    key=f"cardiac-study-{study.study_id}-{token}",
                    retries=retries,
                    pure=False,
                )
                futures[future] = study
            ok = failed = 0
            with _progress(len(todo), skipped, progress) as bar:
                for future in as_completed(futures):
                    study = futures[future]
                    try:
                        record = future.result()
                    except Exception as e:  # KilledWorker and anything else that escaped the task
                        record = _worker_death_record(study, e, out_dir)
                    processed.append(study.study_id)
                    ok += record["status"] == STATUS_OK
                    failed += record["status"] != STATUS_OK
                    elapsed = time.perf_counter() - t0
                    bar.set_postfix(ok=ok, failed=failed, per_min=f"{60 * (ok + failed) / elapsed:.1f}")
                    bar.update(1)
                    if on_study_done is not None:
                        on_study_done(record)
        completed = True
    except BaseException:
        if client is not None and own_client is None and futures:
            client.cancel(list(futures))
        raise
    finally:
        wall = time.perf_counter() - t0
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
        rows = cohort_rows(studies, out_dir)
        csv_path, parquet_path = write_cohort_table(rows, out_dir)
        # staging folders of killed writes go once no writer can be left: every task of this run is done,
        # or the cluster is gone (after an interruption, cancelled tasks still running on someone else's
        # cluster go on writing; the next completed run cleans up after them)
        if completed or own_cluster is not None:
            remove_leftovers(out_dir)
    counts = {s: sum(r["status"] == s for r in rows) for s in (STATUS_OK, STATUS_FAILED, STATUS_PENDING)}
    return BatchSummary(
        total=len(studies),
        skipped=skipped,
        processed=processed,
        ok=counts[STATUS_OK],
        failed=counts[STATUS_FAILED],
        pending=counts[STATUS_PENDING],
        wall_s=wall if todo else 0.0,
        failures={r["study_id"]: r["error"] for r in rows if r["status"] == STATUS_FAILED},
        cohort_csv=csv_path,
        cohort_parquet=parquet_path,
        workers=n_workers,
    )
