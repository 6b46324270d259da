"""Cohort throughput on Dask: studies per minute with 1 and 2 single-thread workers, and the batch layer's
per-study overhead over ``analyze`` alone.

    .venv/bin/python bench/batch.py [--studies 8] [--frames 12] [--size 160] [--slices 8] [--json out.json]

Generates ``--studies`` synthetic cines (plus one for warming up) into a temporary folder. The reference is
this process doing what one batch task does — ``read_cine``, ``analyze``, ``write_outputs`` — with the
model loaded once and torch on one thread. Each batch configuration gets a fresh ``LocalCluster`` whose
workers load the model before the clock starts (model load excluded, as in the reference) and analyse the
warm-up study once; then ``run_batch`` is timed from submission to the last result. Prints absolute times,
the speed-up of 2 workers over 1 (bar: at least 1.6x on a 2-core machine) and the overhead of 1 worker over
the reference (bar: at most 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from CardiacMTLApps.batch import register_model_plugin, run_batch, start_local_cluster
from CardiacMTLApps.cohort import discover_studies
from CardiacMTLLib.analysis.diagnosis.classifiers import load_classifier
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.models.registry import load_model
from CardiacMTLLib.outputs import write_outputs
from CardiacMTLLib.pipeline import analyze
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case


def make_cohort(folder: Path, count: int, frames: int, size: int, slices: int) -> None:
    scratch = folder.parent / "scratch"
    for seed in range(count):
        case = generate_synthetic_cine(seed=seed, num_frames=frames, shape=(size, size, slices))
        write_synthetic_case(case, scratch / str(seed))
        shutil.move(scratch / str(seed) / "synthetic_cine.nii.gz", folder / f"study{seed:03d}.nii.gz")
    shutil.rmtree(scratch)


def reference_seconds(studies, out: Path) -> list[float]:
    """Per-study wall time of read + analyze + write in this process (model and classifier loaded)."""
    import torch

    torch.set_num_threads(1)
    model, classifier = load_model(device="cpu"), load_classifier()
    warm, *timed = studies
    write_outputs(analyze(read_cine(warm.path), model=model, classifier=classifier), out / warm.study_id)
    seconds = []
    for study in timed:
        t0 = time.perf_counter()
        result = analyze(read_cine(study.path), model=model, classifier=classifier)
        write_outputs(result, out / study.study_id)
        seconds.append(time.perf_counter() - t0)
    return seconds


def batch_run(studies, out: Path, workers: int) -> dict:
    cluster, client = start_local_cluster(workers, threads_per_worker=1)
    try:
        register_model_plugin(client, device="cpu")
        warm, *timed = studies
        run_batch([warm], out / "warm-up", client=client, device="cpu", progress=False)
        summary = run_batch(timed, out / "timed", client=client, device="cpu", progress=False)
    finally:
        client.close()
        cluster.close()
    if summary.ok != len(timed):
        raise RuntimeError(
            f"batch with {workers} worker(s): {summary.failed} studies failed: {summary.failures}"
        )
    task_seconds = [
        json.loads((out / "timed" / "status" / f"{s.study_id}.json").read_text())["timings_s"]["total"]
        for s in timed
    ]
    return {
        "workers": workers,
        "wall_s": summary.wall_s,
        "s_per_study": summary.wall_s / len(timed),
        "studies_per_min": summary.studies_per_minute,
        "mean_task_s": statistics.mean(task_seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8, help="timed studies (one more warms up)")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=160, help="rows and columns of each slice")
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cardiac-batch-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "cohort").mkdir()
        make_cohort(tmp / "cohort", args.studies + 1, args.frames, args.size, args.slices)
        studies, _ = discover_studies(tmp / "cohort")
        print(
            f"{args.studies} timed studies of {args.frames} frames x {args.slices} slices x {args.size}^2 "
            f"on {os.cpu_count()} CPU core(s); model load excluded everywhere"
        )
        ref = reference_seconds(studies, tmp / "reference")
        ref_mean = statistics.mean(ref)
        print(
            f"analyze alone (read+analyze+write, 1 thread): {ref_mean:.2f} s/study ({60 / ref_mean:.1f}/min)"
        )
        runs = {}
        for workers in (1, 2):
            runs[workers] = batch_run(studies, tmp / f"batch{workers}", workers)
            r = runs[workers]
            print(
                f"batch, {workers} single-thread worker(s): {r['wall_s']:.1f} s wall, {r['s_per_study']:.2f} s/study, "
                f"{r['studies_per_min']:.1f} studies/min (task itself {r['mean_task_s']:.2f} s)"
            )
    speedup = runs[2]["studies_per_min"] / runs[1]["studies_per_min"]
    overhead = runs[1]["s_per_study"] / ref_mean - 1
    print(
        f"2 workers / 1 worker throughput: {speedup:.2f}x (bar >= 1.6x): {'PASS' if speedup >= 1.6 else 'FAIL'}"
    )
    print(
        f"batch overhead per study (1 worker vs analyze alone): {100 * overhead:+.1f} % (bar <= 10 %): "
        f"{'PASS' if overhead <= 0.10 else 'FAIL'}"
    )
    if args.json:
        document = {"reference_s_per_study": ref_mean, "runs": runs, "speedup": speedup, "overhead": overhead}
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0 if speedup >= 1.6 and overhead <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
