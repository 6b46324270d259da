"""Time motion + strain: ACDC ED/ES pairs (expert labels), a generated 30-frame, 16-slice motion cine and
the 30-frame, 16-slice, 256 x 256 cine of bench/analyze_speed.py (true labels); with ``--base``, side by
side with an older checkout in the same run, the ratio and the largest difference of the results.

    .venv/bin/python bench/strain_speed.py [--data ../shared/data/acdc] [--patients 5] [--repeats 3]
        [--base /tmp/speed-base --base-python PYTHON] [--analyze]

Prints seconds per call (median and max of the ACDC patients; each the fastest of two calls, the second
reading the wall-thickness rays from the cache as in analyze) and, with ``--analyze``, the share of a
whole ``pipeline.analyze`` of the first patient (the model loaded once, excluded). Bars (issue 17):
ED/ES pair <= 1 s, 30-frame 16-slice cine <= 5 s on 2 CPU cores. Each checkout runs in a fresh process
of its own, the two alternating, ``--repeats`` times; a call's time is its fastest run. With ``--base``
the global and segmental peaks and curves of the two checkouts are compared (the bar: within 0.01
percentage points).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE_PCT = 0.01


def _numbers(result) -> list[float | None]:
    """The global and segmental peaks and curves of a StrainResult, in one fixed order."""
    out = [result.global_radial_pct, result.global_circumferential_pct]
    out += result.global_radial_curve_pct + result.global_circumferential_curve_pct
    for s in result.segments:
        out += [s.peak_radial_pct, s.peak_circumferential_pct]
        out += s.radial_curve_pct + s.circumferential_curve_pct
    return out


def _worker(args) -> dict:
    import CardiacMTLLib.analysis.strain as strain
    from CardiacMTLLib.analysis.landmarks.rv_insertion import rv_insertion_points
    from CardiacMTLLib.datasets.acdc import ed_es_frames, list_acdc_patients
    from CardiacMTLLib.io.cine import read_cine, read_volume
    from CardiacMTLLib.synthetic.motion import generate_motion_cine
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    data = Path(args.data)
    # warm up imports and caches outside the timings
    warm = generate_motion_cine(seed=0, num_frames=4, shape=(64, 64, 4))
    strain.measure_strain(warm.cine, warm.labels, 0, warm.es_index)
    cases = {}

    def timed(name, *call_args):
        # the fastest of two calls: the second reads the wall-thickness rays from the cache, as strain does
        # in analyze after the indices have measured them
        seconds = []
        for _ in range(2):
            t0 = time.perf_counter()
            result = strain.measure_strain(*call_args)
            seconds.append(time.perf_counter() - t0)
        cases[name] = {"seconds": min(seconds), "numbers": _numbers(result)}
        return result

    if data.is_dir():
        for patient, _ in list_acdc_patients(data)[:: max(1, 100 // args.patients)][: args.patients]:
            cine = read_cine(data / patient)
            labels = np.stack(
                [np.rint(read_volume(p)[0]).astype(np.uint8) for _, _, p in ed_es_frames(data, patient)]
            )
            timed(f"{patient} {tuple(cine.data.shape)}", cine, labels, 0, 1)
    case = generate_motion_cine(seed=7, num_frames=30, shape=(160, 160, 16), spacing_mm=(1.4, 1.4, 7.0))
    result = timed(
        f"motion cine {tuple(case.cine.data.shape)}",
        case.cine,
        case.labels,
        case.ed_index,
        case.es_index,
        case.rv_insertions,
    )
    motion_s = result.extra["motion_s"]
    # the cine bench/analyze_speed.py times, with the insertion points analyze hands to strain
    sax = generate_synthetic_cine(seed=3, num_frames=30, shape=(256, 256, 16), spacing_mm=(1.4, 1.4, 7.0))
    ed = sax.ed_index
    points = rv_insertion_points(
        sax.labels[ed], sax.cine.spacing_mm, sax.cine.affine, frame=sax.cine.frame_numbers[ed]
    )
    timed(f"analyze cine {tuple(sax.cine.data.shape)}", sax.cine, sax.labels, ed, sax.es_index, points)
    return {"cases": cases, "motion_s": motion_s, "libfile": strain.__file__}


def _run(python: str, tree: Path, args) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{tree / 'CardiacMTL'}{os.pathsep}{tree / 'CardiacAtlas'}"
    command = [python, str(Path(__file__).resolve()), "--worker", "--data", args.data]
    command += ["--patients", str(args.patients)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=str(tree))
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the strain run failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["libfile"].startswith(str(tree)):
        raise SystemExit(f"{tree}: the run imported {report['libfile']}, not this checkout's code")
    return report


def _largest_difference(a: list, b: list) -> float:
    """Largest absolute difference (percentage points) of two number lists; a value known in one and not
    the other counts as infinite."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if (x is None) != (y is None):
            return float("inf")
        if x is not None:
            worst = max(worst, abs(x - y))
    return worst


def _analyze_share(data: Path) -> None:
    from CardiacMTLLib.analysis.strain import measure_strain
    from CardiacMTLLib.datasets.acdc import list_acdc_patients
    from CardiacMTLLib.io.cine import read_cine
    from CardiacMTLLib.models.registry import load_model
    from CardiacMTLLib.pipeline import analyze

    patient = list_acdc_patients(data)[0][0]
    cine = read_cine(data / patient)
    model = load_model(device="cpu")
    t0 = time.perf_counter()
    result = analyze(cine, model=model)
    whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    measure_strain(cine, result.labels, result.ed_index, result.es_index, result.landmarks)
    part = time.perf_counter() - t0
    print(
        f"{patient}: analyze {whole:.2f} s, motion + strain {part:.2f} s "
        f"({100 * part / (whole + part):.0f} %)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--patients", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each checkout (the fastest counts)")
    parser.add_argument("--base", help="an older checkout of the project to run side by side")
    parser.add_argument(
        "--base-python", default=sys.executable, help="the Python of --base (default: this one)"
    )
    parser.add_argument("--analyze", action="store_true", help="also time analyze() of the first patient")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0
    if not Path(args.data).is_dir():
        print(f"ACDC data not found at {args.data}: skipping the ED/ES pairs")
    trees = [("current", sys.executable, ROOT)]
    if args.base:
        trees.insert(0, ("base", args.base_python, Path(args.base).resolve()))
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} CPUs")
    reports: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name, python, tree in trees:
            report = _run(python, tree, args)
            if name not in reports:
                reports[name] = report
                continue
            for case, entry in report["cases"].items():
                best = reports[name]["cases"][case]
                best["seconds"] = min(best["seconds"], entry["seconds"])
            reports[name]["motion_s"] = min(reports[name]["motion_s"], report["motion_s"])
    for name, report in reports.items():
        cases = report["cases"]
        print(f"\n{name}: {report['libfile']}")
        pairs = [v["seconds"] for k, v in cases.items() if k.startswith("patient")]
        for case, entry in cases.items():
            print(f"  {case}: {entry['seconds']:.3f} s")
        if pairs:
            print(
                f"  ACDC ED/ES pair: median {statistics.median(pairs):.3f} s, "
                f"max {max(pairs):.3f} s (bar 1 s)"
            )
        print(f"  motion of the motion cine: {report['motion_s']:.3f} s; generated cines: bar 5 s")
    if "base" in reports:
        base, current = reports["base"]["cases"], reports["current"]["cases"]
        print("\nbase / current (fastest runs), largest difference of the peaks and curves:")
        worst = 0.0
        for case in base:
            ratio = base[case]["seconds"] / current[case]["seconds"]
            difference = _largest_difference(base[case]["numbers"], current[case]["numbers"])
            worst = max(worst, difference)
            print(
                f"  {case}: {base[case]['seconds']:.3f} s -> {current[case]['seconds']:.3f} s, "
                f"{ratio:.2f}x faster; difference {difference:.2g} points"
            )
        pairs = [k for k in base if k.startswith("patient")]
        if pairs:
            ratio = statistics.median(base[k]["seconds"] for k in pairs) / statistics.median(
                current[k]["seconds"] for k in pairs
            )
            print(f"  ACDC ED/ES pairs (medians): {ratio:.2f}x faster")
        verdict = "within" if worst <= TOLERANCE_PCT else "NOT within"
        print(f"  largest difference {worst:.2g} points: {verdict} {TOLERANCE_PCT}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.analyze and Path(args.data).is_dir():
        _analyze_share(Path(args.data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
