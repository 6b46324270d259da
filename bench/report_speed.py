"""Time ``report.png`` (:func:`CardiacMTLLib.report.figures.write_report`) on the analyses of the generated
30-frame, 16-slice, 256 x 256 DICOM cine, the built-in demo cine and the biv-me study; with ``--base``,
side by side with an older checkout of the project in the same run, the ratio, and how much the two
pictures differ.

    .venv/bin/python bench/report_speed.py [--base /tmp/report-base] [--base-python PYTHON]
        [--repeats 3] [--cases cine30,demo,bivme]

Each case is analysed once with this checkout (as ``cardiac-mtl analyze`` and ``cardiac-mtl demo`` do)
and the result kept in ``/tmp/cardiacmtl-bench/report-cases`` as a pickle, so both checkouts draw the
same result. Each run is a fresh process that imports what an analysis has imported when it writes its
outputs, then times the first ``write_report`` (matplotlib's import and first use included, as for a
user) and a second one (the drawing alone), in wall-clock and in CPU seconds (the process's own, the
steadier of the two on a machine that other work keeps busy). The runs of the two checkouts alternate;
the fastest of ``--repeats`` counts. The pictures are compared pixel by pixel (mean absolute difference of the RGBA
values, 0-255, and the number of pixels that differ).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "cardiacmtl-bench" / "report-cases"
CASES = {
    "cine30": "generated cine 30 x 16 x 256 x 256 (DICOM)",
    "demo": "built-in demo cine (cardiac-mtl demo)",
    "bivme": "biv-me DICOM study",
}


def _worker(case: str, out_png: str) -> dict:
    result = pickle.loads(Path(case).read_bytes())
    import CardiacMTLLib.actions  # noqa: F401  (what an analysis has imported before it writes)
    import CardiacMTLLib.report.figures as figures

    loaded_before = "matplotlib" in sys.modules
    t, cpu = time.perf_counter(), time.process_time()
    figures.write_report(result, out_png)
    first, first_cpu = time.perf_counter() - t, time.process_time() - cpu
    t, cpu = time.perf_counter(), time.process_time()
    figures.write_report(result, Path(out_png).with_suffix(".again.png"))
    warm, warm_cpu = time.perf_counter() - t, time.process_time() - cpu
    return {
        "first_s": first,
        "warm_s": warm,
        "first_cpu_s": first_cpu,
        "warm_cpu_s": warm_cpu,
        "matplotlib_before": loaded_before,
        "libfile": figures.__file__,
    }


def _prepare(name: str, pickle_path: Path) -> None:
    """Analyse case ``name`` with this checkout and pickle the result to ``pickle_path``."""
    from CardiacMTLLib.actions import analyze_path

    with tempfile.TemporaryDirectory() as tmp:
        if name == "demo":
            from CardiacMTLApps.workflows import run_demo

            result, _ = run_demo(Path(tmp) / "demo")
        else:
            if name == "cine30":
                sys.path.insert(0, str(ROOT / "bench"))
                from analyze_speed import generated_cine

                folder = generated_cine()
            else:
                folder = DATA / "bivme_patient1" / "dicom"
            result = analyze_path(folder, Path(tmp) / "out")
    staging = pickle_path.with_suffix(".partial")
    staging.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    staging.rename(pickle_path)


def _env(tree: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{tree / 'CardiacMTL'}{os.pathsep}{tree / 'CardiacAtlas'}"
    env["TQDM_DISABLE"] = "1"
    return env


def case_pickle(name: str) -> Path:
    """The pickled analysis of case ``name`` (analysed once, by a fresh process of this checkout)."""
    path = CACHE / f"{name}.pkl"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"analysing {CASES[name]} once ...", file=sys.stderr)
        command = [sys.executable, str(Path(__file__).resolve()), "--prepare", name, str(path)]
        subprocess.run(command, env=_env(ROOT), cwd=str(ROOT), check=True)
    return path


def run_once(python: str, tree: Path, case: Path, out_png: Path) -> dict:
    command = [python, str(Path(__file__).resolve()), "--worker", str(case), str(out_png)]
    done = subprocess.run(command, env=_env(tree), capture_output=True, text=True, cwd=str(tree))
    if done.returncode != 0:
        raise SystemExit(f"{tree}: write_report on {case} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["libfile"].startswith(str(tree)):
        raise SystemExit(f"{tree}: the run imported {report['libfile']}, not this checkout's code")
    return report


def picture_difference(a: Path, b: Path) -> str:
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGBA"), dtype=np.int16)
    y = np.asarray(Image.open(b).convert("RGBA"), dtype=np.int16)
    if x.shape != y.shape:
        return f"different sizes {x.shape} and {y.shape}"
    difference = np.abs(x - y)
    return (
        f"mean abs pixel difference {difference.mean():.4f} (0-255), "
        f"{int(difference.any(axis=2).sum())} of {x.shape[0] * x.shape[1]} pixels differ; "
        f"{a.stat().st_size // 1024} KiB and {b.stat().st_size // 1024} KiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--base", help="an older checkout of the project to run side by side")
    parser.add_argument(
        "--base-python", default=sys.executable, help="the Python of --base (default: this one)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each checkout; the fastest counts")
    parser.add_argument("--cases", default="cine30,demo,bivme", help=f"comma-separated: {', '.join(CASES)}")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return 0
    if args.prepare:
        _prepare(args.prepare[0], Path(args.prepare[1]))
        return 0
    names = args.cases.split(",")
    for name in names:
        if name not in CASES:
            parser.error(f"unknown case {name!r}")
    if "bivme" in names and not (DATA / "bivme_patient1" / "dicom").is_dir():
        print(f"biv-me study not found under {DATA}: skipped", file=sys.stderr)
        names.remove("bivme")
    trees = [("current", sys.executable, ROOT)]
    if args.base:
        trees.insert(0, ("base", args.base_python, Path(args.base).resolve()))
    pickles = {name: case_pickle(name) for name in names}
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} CPUs")
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            best: dict[str, dict] = {}
            for _ in range(args.repeats):
                for tree_name, python, tree in trees:
                    png = Path(tmp) / f"{name}-{tree_name}.png"
                    report = run_once(python, tree, pickles[name], png)
                    kept = best.setdefault(tree_name, report)
                    for key in ("first_s", "warm_s", "first_cpu_s", "warm_cpu_s"):
                        kept[key] = min(kept[key], report[key])
            print(f"\n{CASES[name]}: report.png")
            for tree_name, _, _ in trees:
                r = best[tree_name]
                print(
                    f"  {tree_name:<8} first call (matplotlib import included) {r['first_s']:.3f} s "
                    f"(CPU {r['first_cpu_s']:.3f} s), drawing alone {r['warm_s']:.3f} s "
                    f"(CPU {r['warm_cpu_s']:.3f} s)"
                )
            if args.base:
                base, current = best["base"], best["current"]
                ratios = {k: base[k] / current[k] for k in ("first_s", "warm_s", "first_cpu_s", "warm_cpu_s")}
                print(
                    f"  {ratios['first_s']:.2f}x faster with the import (CPU time {ratios['first_cpu_s']:.2f}x), "
                    f"{ratios['warm_s']:.2f}x the drawing alone (CPU time {ratios['warm_cpu_s']:.2f}x)"
                )
                pngs = (Path(tmp) / f"{name}-base.png", Path(tmp) / f"{name}-current.png")
                print(f"  pictures: {picture_difference(*pngs)}")
                summary.append(
                    f"{name}: base {base['first_s']:.3f} s, current {current['first_s']:.3f} s, "
                    f"{ratios['first_s']:.2f}x faster (CPU {base['first_cpu_s']:.3f} s and "
                    f"{current['first_cpu_s']:.3f} s, {ratios['first_cpu_s']:.2f}x)"
                )
            else:
                summary.append(f"{name}: {best['current']['first_s']:.3f} s")
    print()
    print("\n".join(summary))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
