"""Time ``segment`` end to end (read NIfTI, pre-process, network, softmax resampling, clean-up, write)
per ACDC volume, with the model loaded once (its load time is reported separately), and score it (Dice
against the expert labels); with ``--base``, side by side with an older checkout in the same run.

    .venv/bin/python bench/segment_speed.py [--data ../shared/data/acdc] [--device cpu] [--repeats 1]
        [--precision auto] [--base /tmp/speed-base --base-python PYTHON] [--base-precision P] [--torch-runtime]

Uses the validation patients recorded in the shipped model's manifest (ED and ES of each: 40 volumes).
Prints seconds per volume (median, mean, max), slices per second and the mean Dice of each structure;
with ``--base`` also the ratio of the medians and the Dice differences (the bar: within 0.002). Each
checkout runs in a fresh process of its own; with ``--repeats`` the runs alternate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DICE_TOLERANCE = 0.002


def _worker(args) -> dict:
    import numpy as np

    import CardiacMTLLib.analysis.segment as segment
    from CardiacMTLLib.datasets.acdc import load_annotated_frames
    from CardiacMTLLib.evaluation.metrics import dice_by_structure
    from CardiacMTLLib.io.cine import read_volume
    from CardiacMTLLib.io.nifti import write_label_map
    from CardiacMTLLib.models.registry import load_model

    try:
        from CardiacMTLLib.models.runtime import set_inference_threads
    except ImportError:  # an older checkout: torch only
        set_inference_threads = None
    if args.threads and set_inference_threads is not None:
        set_inference_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.model, device=args.device, precision=args.precision)
    torch = None
    if getattr(model, "runtime", "torch") == "torch":
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
    load_s = time.perf_counter() - t0
    patients = model.manifest["training"]["validation_patients"]
    frames = [(img, gt) for p in patients for _, img, gt in load_annotated_frames(Path(args.data), p)]
    # warm-up: the first call initialises oneDNN kernels
    image, spacing, affine = read_volume(frames[0][0])
    segment.segment_volume(model, image, spacing)
    times, slices, dice = [], 0, {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for path, truth_path in frames:
                t = time.perf_counter()
                image, spacing, affine = read_volume(path)
                labels = segment.segment_volume(model, image, spacing)
                write_label_map(
                    labels, affine, Path(tmp) / f"{path.name.split('.')[0]}_seg.nii.gz", spacing_mm=spacing
                )
                if torch is not None and model.device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
                slices += image.shape[0]
                if repeat == 0:
                    truth = np.rint(read_volume(truth_path)[0]).astype(np.uint8)
                    for name, value in dice_by_structure(labels, truth).items():
                        dice.setdefault(name, []).append(value)
    return {
        "device": model.device_text,
        "model": model.model_id,
        "load_s": load_s,
        "times": times,
        "slices": slices,
        "volumes": len(frames),
        "patients": len(patients),
        "dice": dice,
        "libfile": segment.__file__,
    }


def _run(python: str, tree: Path, args, extra_env: dict, precision: str) -> dict:
    env = dict(os.environ)
    env.update(extra_env)
    env["PYTHONPATH"] = f"{tree / 'CardiacMTL'}{os.pathsep}{tree / 'CardiacAtlas'}"
    command = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        "--data",
        args.data,
        "--device",
        args.device,
    ]
    command += ["--precision", precision, "--repeats", "1"]
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--model", args.model] if args.model else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=str(tree))
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the segmentation run failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["libfile"].startswith(str(tree)):
        raise SystemExit(f"{tree}: the run imported {report['libfile']}, not this checkout's code")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--model", default=None, help="model folder (default: shipped)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: all cores)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"])
    parser.add_argument(
        "--base-precision",
        choices=["auto", "fp32", "bf16"],
        help="the base's precision (default: --precision; auto where that is int8, which it lacks)",
    )
    parser.add_argument("--base", help="an older checkout of the project to run side by side")
    parser.add_argument(
        "--base-python", default=sys.executable, help="the Python of --base (default: this one)"
    )
    parser.add_argument(
        "--torch-runtime",
        action="store_true",
        help="also run the current checkout with CARDIACMTL_RUNTIME=torch (torch instead of OpenVINO)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        print(f"ACDC data not found at {args.data}", file=sys.stderr)
        return 1
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0
    # not at the top: a worker imports the checkout it times, which may be an older one
    from CardiacMTLLib.models.device import cpu_description

    # (name, python, checkout, environment, precision); int8 is the current OpenVINO runtime's only:
    # the base (which has no int8 network) and the torch run keep to their own auto where it is asked for
    other = "auto" if args.precision == "int8" else args.precision
    trees = [("current", sys.executable, ROOT, {}, args.precision)]
    if args.torch_runtime:
        trees.insert(0, ("torch", sys.executable, ROOT, {"CARDIACMTL_RUNTIME": "torch"}, other))
    if args.base:
        trees.insert(
            0, ("base", args.base_python, Path(args.base).resolve(), {}, args.base_precision or other)
        )
    print(f"CPU: {cpu_description()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} CPUs")
    reports: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name, python, tree, extra_env, precision in trees:
            report = _run(python, tree, args, extra_env, precision)
            if name in reports:
                reports[name]["times"] += report["times"]
                reports[name]["slices"] += report["slices"]
            else:
                reports[name] = report
    for name, report in reports.items():
        times = report["times"]
        dice = {k: statistics.mean(v) for k, v in report["dice"].items()}
        print(
            f"\n{name}: device {report['device']}; model {report['model']} loaded in {report['load_s']:.2f} s"
        )
        print(
            f"  {len(times)} volumes ({report['patients']} validation patients, ED+ES), {report['slices']} slices"
        )
        print(
            f"  seconds per volume: median {statistics.median(times):.3f}, mean {statistics.mean(times):.3f}, "
            f"max {max(times):.3f}; slices per second: {report['slices'] / sum(times):.1f}"
        )
        print("  mean Dice: " + ", ".join(f"{k} {v:.4f}" for k, v in dice.items()))
    if "torch" in reports:
        torch_times, times = reports["torch"]["times"], reports["current"]["times"]
        print(
            f"\nthe same code on torch: median {statistics.median(torch_times):.3f} s per volume; the default "
            f"runtime {statistics.median(torch_times) / statistics.median(times):.2f}x faster"
        )
        for k in reports["torch"]["dice"]:
            delta = statistics.mean(reports["current"]["dice"][k]) - statistics.mean(
                reports["torch"]["dice"][k]
            )
            print(f"  Dice {k}: default runtime minus torch {delta:+.4f}")
    if "base" in reports:
        base, current = reports["base"], reports["current"]
        ratio = statistics.median(base["times"]) / statistics.median(current["times"])
        print(
            f"\nper volume (median): base {statistics.median(base['times']):.3f} s, current "
            f"{statistics.median(current['times']):.3f} s: {ratio:.2f}x faster"
        )
        worst = 0.0
        for k in base["dice"]:
            delta = statistics.mean(current["dice"][k]) - statistics.mean(base["dice"][k])
            worst = max(worst, abs(delta))
            print(f"  Dice {k}: base {statistics.mean(base['dice'][k]):.4f}, current "
                  f"{statistics.mean(current['dice'][k]):.4f}, difference {delta:+.4f}")  # fmt: skip
        verdict = "within" if worst <= DICE_TOLERANCE else "NOT within"
        print(f"  largest Dice difference {worst:.4f}: {verdict} {DICE_TOLERANCE} (current {args.precision})")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
