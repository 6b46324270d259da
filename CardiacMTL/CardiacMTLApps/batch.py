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

import dataclasses
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from distributed import WorkerPlugin

from CardiacMTLApps.cohort import (
    FAILURE_STUDY,
    FAILURE_WORKER,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_PENDING,
    Study,
    check_unique_ids,
    cohort_rows,
    is_done,
    is_finished,
    read_status,
    remove_leftovers,
    status_path,
    studies_dir,
    write_cohort_table,
)
from CardiacMTLLib import __version__
from CardiacMTLLib.analysis.diagnosis.classifiers import load_classifier
from CardiacMTLLib.atomic import claim_folder, record_written, write_json_atomic
from CardiacMTLLib.errors import CardiacError, CardiacInputError
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.models.registry import load_model, load_once, resolve_model_dir
from CardiacMTLLib.models.runtime import set_inference_threads

PLUGIN_NAME = "cardiac-mtl-model"


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

    ``threads`` sets the network runtime's intra-op threads, torch's or OpenVINO's (a worker passes its
    thread count). Returns ``(model, classifier, load_seconds)``; ``load_seconds`` is 0 when they were
    already loaded.
    """
    if threads:
        set_inference_threads(threads)
    loaded = []

    def prepare():
        loaded.append(True)
        model = load_model(model_dir, device=device, precision=precision, cached=False)
        if threads and model.runtime == "torch":
            import torch

            torch.set_num_threads(int(threads))
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
    if is_done(study, out_dir):
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
        cine = read_cine(study.path, height_cm=study.height_cm, weight_kg=study.weight_kg, sex=study.sex)
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
        if is_done(study, out_dir):  # another attempt finished it meanwhile: keep its record
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


# what a cohort's results were made with: a re-run resumes only with the same (a table mixing models or
# precisions, study by study, has no column saying which)
RUN_OPTIONS_FILE = "batch_options.json"


def check_run_options(out_dir: Path, options: dict) -> None:
    """Record ``options`` (segmentation model, precision) in a new batch folder; refuse a re-run into a
    folder whose results were made with others."""
    path = Path(out_dir) / RUN_OPTIONS_FILE
    if not path.is_file():  # a new folder (or one from before the options were recorded)
        write_json_atomic(options, path, indent=1)
        record_written(out_dir, path)
        return
    earlier = json.loads(path.read_text())
    if earlier != options:
        said = lambda o: f"--model {o.get('model')} --precision {o.get('precision')}"  # noqa: E731
        raise CardiacInputError(
            f"{out_dir}: its studies were analysed with {said(earlier)}, this run asks for {said(options)}; "
            "a cohort's table holds one model's results: resume with the same options, or give a new --out"
        )


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
    check_unique_ids(studies, out_dir)
    check_run_options(out_dir, {"model": resolve_model_dir(model_dir).name, "precision": precision})
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
