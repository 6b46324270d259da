"""Cohort analysis on a real Dask ``LocalCluster`` (2 worker processes, 1 thread each): same results as
``analyze``, failures recorded, a worker killed mid-run, and an interrupted run resumed."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip(
    "distributed", reason="cohort analysis needs dask.distributed (pip install 'dask[distributed]')"
)
pytest.importorskip("pyarrow", reason="the cohort table's Parquet file needs pyarrow")

from CardiacMTLApps.batch import run_batch, start_local_cluster  # noqa: E402
from CardiacMTLApps.cli.mtl import main  # noqa: E402
from CardiacMTLApps.cohort import (  # noqa: E402
    _strain_columns,
    discover_studies,
    read_manifest,
    read_status,
    status_path,
    studies_dir,
)
from CardiacMTLLib.errors import CardiacInputError  # noqa: E402
from CardiacMTLLib.io.cine import read_cine  # noqa: E402
from CardiacMTLLib.outputs import write_outputs
from CardiacMTLLib.pipeline import analyze  # noqa: E402
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case  # noqa: E402

pytestmark = pytest.mark.slow

NUM_SYNTHETIC = 4


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Four small generated cines, a corrupt file, an image of the wrong geometry, a label map and a text
    file, side by side."""
    folder = tmp_path_factory.mktemp("cohort")
    scratch = tmp_path_factory.mktemp("scratch")
    for seed in range(NUM_SYNTHETIC):
        case = generate_synthetic_cine(seed=seed, num_frames=4, shape=(96, 96, 6), subslices=1)
        write_synthetic_case(case, scratch / f"case{seed}")
        shutil.move(scratch / f"case{seed}" / "synthetic_cine.nii.gz", folder / f"synth{seed}.nii.gz")
    shutil.move(scratch / "case0" / "synthetic_cine_gt.nii.gz", folder / "synth0_gt.nii.gz")  # not a study
    (folder / "corrupt.nii.gz").write_bytes(b"this is not a NIfTI file")
    nib.save(nib.Nifti1Image(np.zeros((96, 96), np.int16), np.eye(4)), folder / "flat.nii.gz")
    (folder / "notes.txt").write_text("not a study")
    return folder


@pytest.fixture(scope="module")
def reference_model():
    """The shipped model in this process, run on one thread as each batch worker runs it."""
    import torch

    from CardiacMTLLib.models.registry import load_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model(device="cpu")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dask_client():
    cluster, client = start_local_cluster(workers=2, threads_per_worker=1)
    yield client
    client.close()
    cluster.close()


def _synthetic_studies(folder: Path):
    return [s for s in discover_studies(folder)[0] if s.study_id.startswith("synth")]


def _assert_same_as_analyze(
    study_dir: Path, path: Path, model, scratch: Path, height_cm=None, weight_kg=None
):
    result = analyze(read_cine(path, height_cm=height_cm, weight_kg=weight_kg), model=model, device="cpu")
    reference = write_outputs(result, scratch / f"reference-{study_dir.name}")
    batch_doc = json.loads((study_dir / "indices.json").read_text())
    ref_doc = json.loads((reference / "indices.json").read_text())
    assert batch_doc["indices"] == ref_doc["indices"]
    assert batch_doc["volume_curve_ml"] == ref_doc["volume_curve_ml"]
    assert batch_doc["qc"] == ref_doc["qc"]
    assert batch_doc["diagnosis"]["class"] == ref_doc["diagnosis"]["class"]
    assert batch_doc["diagnosis"]["probabilities"] == pytest.approx(
        ref_doc["diagnosis"]["probabilities"], abs=1e-9
    )
    names = sorted(p.name for p in (reference / "segmentation").iterdir())
    assert sorted(p.name for p in (study_dir / "segmentation").iterdir()) == names
    for name in names:
        got = np.asarray(nib.load(study_dir / "segmentation" / name).dataobj)
        expected = np.asarray(nib.load(reference / "segmentation" / name).dataobj)
        np.testing.assert_array_equal(got, expected)
    assert (study_dir / "report.png").stat().st_size > 10_000


def _cohort_table(out: Path) -> list[dict]:
    import pyarrow.parquet as pq

    with open(out / "cohort.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    parquet = pq.read_table(out / "cohort.parquet").to_pylist()
    assert [r["study_id"] for r in parquet] == [r["study_id"] for r in rows]
    return rows


def _assert_each_study_once(out: Path, study_ids: set[str]) -> None:
    entries = sorted(p.name for p in (out / "studies").iterdir())
    assert entries == sorted(study_ids)  # no second copy, no staging or backup folder left behind
    rows = _cohort_table(out)
    assert sorted(r["study_id"] for r in rows) == sorted(study_ids)
    assert {r["status"] for r in rows} == {"ok"}


def test_a_folder_of_studies_is_found_by_kind_and_ids_are_checked(cohort, tmp_path):
    studies, ignored = discover_studies(cohort)
    assert {s.study_id: s.kind for s in studies} == {
        **{f"synth{i}": "nifti" for i in range(NUM_SYNTHETIC)},
        "corrupt": "nifti",
        "flat": "nifti",
    }
    assert [p.name for p in ignored] == ["notes.txt", "synth0_gt.nii.gz"]
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"study_id,path,height_cm\na,{cohort / 'synth0.nii.gz'},170\na,synth1.nii.gz,\n")
    with pytest.raises(CardiacInputError, match="'a' is used twice"):
        read_manifest(manifest)
    manifest.write_text("study_id,path,height\na,synth1.nii.gz,170\n")
    with pytest.raises(CardiacInputError, match=r"unknown \['height'\]"):
        read_manifest(manifest)


def test_batch_matches_analyze_records_failures_and_skips_finished_studies(
    cohort, reference_model, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["batch", str(cohort), "--out", str(out), "--workers", "2", "--threads-per-worker", "1"]
    assert main([*argv, "--device", "cpu"]) == 1  # two studies failed: the exit status says so
    printed = capsys.readouterr().out
    assert "4 ok, 2 failed" in printed

    rows = {r["study_id"]: r for r in _cohort_table(out)}
    assert len(rows) == NUM_SYNTHETIC + 2
    assert rows["corrupt"]["status"] == "failed" and "corrupt.nii.gz" in rows["corrupt"]["error"]
    assert rows["flat"]["status"] == "failed" and "found 2D" in rows["flat"]["error"]
    for i in range(NUM_SYNTHETIC):
        row = rows[f"synth{i}"]
        assert row["status"] == "ok" and row["error"] == ""
        assert row["Diagnosis"] in ("NOR", "MINF", "DCM", "HCM", "ARV")
        assert float(row["total_s"]) > 0 and row["QC findings"] != ""
        _assert_same_as_analyze(
            out / "studies" / f"synth{i}", cohort / f"synth{i}.nii.gz", reference_model, tmp_path
        )
        assert (
            float(row["LVEF (%)"])
            == json.loads((out / "studies" / f"synth{i}" / "indices.json").read_text())["indices"]["LVEF (%)"]
        )
        strain = json.loads((out / "studies" / f"synth{i}" / "strain.json").read_text())
        assert float(row["GCS (%)"]) == strain["global_circumferential_pct"] < 0
        assert float(row["GRS (%)"]) == strain["global_radial_pct"] > 0
        assert int(row["Akinetic segments (n)"]) == len(strain["akinetic_segments"])
        assert row["Unmeasured segments"] == " ".join(map(str, strain["unmeasured_segments"]))
    assert sorted(p.name for p in (out / "studies").iterdir()) == [f"synth{i}" for i in range(NUM_SYNTHETIC)]

    # the same command again: everything is finished (the failures are the inputs' own), nothing runs
    assert main([*argv, "--device", "cpu"]) == 1
    assert "6 already done, skipped; 0 processed now" in capsys.readouterr().out


class _Interrupted(Exception):
    pass


def _wait_until_idle(client, timeout_s: float = 120.0) -> None:
    """Cancelled tasks already running go on to the end (Dask cannot stop a running function); wait until
    the workers hold no task at all, twice in a row, so the snapshot of what finished is final."""
    deadline, quiet = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        held = client.run(lambda dask_worker: len(dask_worker.state.tasks) + len(dask_worker.active_threads))
        quiet = quiet + 1 if not any(held.values()) and not any(client.processing().values()) else 0
        if quiet == 2:
            return
        time.sleep(0.5)
    raise AssertionError(f"workers still busy after {timeout_s} s")


def test_an_interrupted_run_resumed_processes_only_what_was_missing(cohort, dask_client, tmp_path):
    dask_client.wait_for_workers(2, timeout=120)
    studies = _synthetic_studies(cohort)
    out = tmp_path / "out"

    def interrupt(record: dict) -> None:
        raise _Interrupted

    with pytest.raises(_Interrupted):
        run_batch(studies, out, client=dask_client, device="cpu", progress=False, on_study_done=interrupt)
    _wait_until_idle(dask_client)
    rows = _cohort_table(out)
    assert sorted(r["study_id"] for r in rows) == sorted(s.study_id for s in studies)
    finished = {s.study_id: read_status(out, s.study_id) for s in studies}
    finished = {k: v for k, v in finished.items() if v is not None and v["status"] == "ok"}
    missing = {s.study_id for s in studies} - set(finished)
    if not missing:
        # on a busy machine every study can finish before the interrupt takes hold: leave one of them as
        # a run killed mid-study leaves it (no status record, no result folder), so the resume has work
        victim = sorted(finished)[-1]
        status_path(out, victim).unlink()
        shutil.rmtree(studies_dir(out) / victim)
        del finished[victim]
        missing = {victim}
    assert finished and missing, (sorted(finished), sorted(missing))

    summary = run_batch(studies, out, client=dask_client, device="cpu", progress=False)
    assert sorted(summary.processed) == sorted(missing)
    assert summary.skipped == len(finished) and summary.ok == len(studies)
    for study_id, record in finished.items():
        assert read_status(out, study_id) == record  # finished studies were not touched again
    _assert_each_study_once(out, {s.study_id for s in studies})


@pytest.mark.data
def test_a_manifest_with_an_acdc_patient_matches_analyze(
    acdc_dir, cohort, dask_client, reference_model, tmp_path
):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "study_id,path,height_cm,weight_kg\n"
        f"p001,{acdc_dir / 'patient001'},180,80\n"
        f"synthetic,{cohort / 'synth0.nii.gz'},,\n"
    )
    studies = read_manifest(manifest)
    assert [(s.study_id, s.kind, s.height_cm) for s in studies] == [
        ("p001", "acdc", 180.0),
        ("synthetic", "nifti", None),
    ]
    dask_client.wait_for_workers(2, timeout=120)
    out = tmp_path / "out"
    summary = run_batch(studies, out, client=dask_client, device="cpu", progress=False)
    assert summary.ok == 2, summary.failures
    _assert_same_as_analyze(
        out / "studies" / "p001",
        acdc_dir / "patient001",
        reference_model,
        tmp_path,
        height_cm=180,
        weight_kg=80,
    )
    _assert_same_as_analyze(
        out / "studies" / "synthetic", cohort / "synth0.nii.gz", reference_model, tmp_path
    )
    rows = {r["study_id"]: r for r in _cohort_table(out)}
    assert float(rows["p001"]["Height (cm)"]) == 180.0


# last in the file: the worker it kills is restarted in the background, which the tests above need not wait for
def test_a_worker_killed_mid_run_loses_and_duplicates_no_study(cohort, dask_client, tmp_path):
    dask_client.wait_for_workers(2, timeout=120)
    studies = _synthetic_studies(cohort)
    pids = dask_client.run(os.getpid)
    killed: dict = {}

    def kill_a_busy_worker(record: dict) -> None:
        if killed:
            return
        busy = {address: keys for address, keys in dask_client.processing().items() if keys}
        assert busy, "no worker was analysing a study when the fault was to be injected"
        address = sorted(busy)[0]
        killed.update(address=address, keys=list(busy[address]))
        os.kill(pids[address], signal.SIGKILL)

    out = tmp_path / "out"
    summary = run_batch(
        studies, out, client=dask_client, device="cpu", progress=False, on_study_done=kill_a_busy_worker
    )
    assert killed, "the fault was never injected"
    assert summary.ok == NUM_SYNTHETIC and summary.failed == 0 and summary.pending == 0
    assert sorted(summary.processed) == sorted(s.study_id for s in studies)  # each study reported once
    _assert_each_study_once(out, {s.study_id for s in studies})
    for study in studies:
        # the studies the dead worker held were finished by another worker
        if any(study.study_id in str(key) for key in killed["keys"]):
            assert read_status(out, study.study_id)["worker"] != killed["address"]


def test_workers_keep_glibc_malloc_defaults(dask_client):
    """Dask's nanny would export MALLOC_TRIM_THRESHOLD_, which turns every large torch allocation into an
    mmap/munmap pair (segmentation about 50 % slower in a worker); our LocalCluster leaves it out."""
    import os

    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        pytest.skip("MALLOC_TRIM_THRESHOLD_ is set in this environment; a user's own setting wins")
    values = dask_client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert values and set(values.values()) == {None}


def test_a_worker_keeps_one_model_per_precision():
    from CardiacMTLApps.batch import worker_model

    exact, _, _ = worker_model("cpu", None, precision="fp32")
    again, _, load_s = worker_model("cpu", None, precision="fp32")
    half, _, _ = worker_model("cpu", None, precision="bf16")
    assert again is exact and load_s == 0.0  # loaded once per worker and precision
    assert exact.precision == "fp32" and half.precision == "bf16" and half is not exact


def test_the_cohort_row_names_the_segments_strain_could_not_measure(tmp_path):
    """A study whose basal slices leave the LV at systole: a researcher reading the table sees which
    segment columns are missing and why, rather than blanks."""
    strain = {
        "global_circumferential_pct": -23.2,
        "global_radial_pct": 38.6,
        "akinetic_segments": [],
        "unmeasured_segments": [1, 2, 3, 4, 5, 6],
    }
    (tmp_path / "strain.json").write_text(json.dumps(strain))
    row = _strain_columns(tmp_path)
    assert row["Unmeasured segments"] == "1 2 3 4 5 6" and row["Akinetic segments (n)"] == 0
    assert row["GCS (%)"] == -23.2 and _strain_columns(tmp_path / "none") == {}


def test_a_batch_folder_resumes_only_with_the_model_and_precision_it_was_made_with(tmp_path):
    """Resuming with another ``--model`` or ``--precision`` mixed two models' results in one cohort table,
    silently."""
    from CardiacMTLApps.batch import check_run_options
    from CardiacMTLLib.atomic import claim_folder
    from CardiacMTLLib.errors import CardiacInputError

    out = claim_folder(tmp_path / "out", overwrite=True)
    check_run_options(out, {"model": "acdc_unet2d", "precision": "auto"})
    check_run_options(out, {"model": "acdc_unet2d", "precision": "auto"})  # the same: resumes
    for other in (
        {"model": "acdc_mtl_unet2d", "precision": "auto"},
        {"model": "acdc_unet2d", "precision": "fp32"},
    ):
        with pytest.raises(CardiacInputError, match="analysed with --model acdc_unet2d --precision auto"):
            check_run_options(out, other)
    claim_folder(out, overwrite=True)  # the options file is the project's: the folder is still its own
