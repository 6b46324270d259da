"""Time ``cardiac-mtl analyze`` end to end, stage by stage, on the biv-me DICOM study and a generated
30-frame, 16-slice, 256 x 256 DICOM cine; with ``--base``, side by side with an older checkout of the
project in the same run, and the ratio.

    .venv/bin/python bench/analyze_speed.py [--base /tmp/speed-base] [--base-python PYTHON]
        [--precision auto] [--repeats 1] [--cases bivme,cine30] [--torch-runtime]

Each run is a fresh process that calls the command line's ``main(["analyze", ...])`` and ends as that
checkout's command ends (so start-up, model load, reading, writing and the process's end count, as for a
user); the stages are timed by wrapping the functions that do them (the network's forward call, the
pre-processing and resampling functions, the clean-up, the reading and writing), so the same
instrumentation reads the older code. The current code post-processes
each frame on a thread while the network runs on the next, and tracks the motion on a thread while the
indices and landmarks are measured (its "strain" runs from the tracking's start): those stages overlap,
the remainders ("segmentation other", "analyze other") then read 0, and only the end-to-end time adds up.
The runs of the two checkouts alternate; with ``--repeats`` above 1 the fastest run of each counts. The generated cine is written once
to ``/tmp/cardiacmtl-bench/cine30`` (480 DICOM files, one series per slice, as scanners export it).
``--torch-runtime`` adds a run of the current checkout with ``CARDIACMTL_RUNTIME=torch``: the network on
torch instead of OpenVINO, torch imported. ``--int8`` adds one with ``--precision int8`` (the quantised
network), with its own ratio to the base.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = Path(tempfile.gettempdir()) / "cardiacmtl-bench"
STAGES = (
    ("start-up", "imports until the command runs; the process's end"),
    ("read", "DICOM/NIfTI to a cine"),
    ("model load", "segmentation network and diagnosis classifier"),
    ("pre-process", "normalise, resample, crop"),
    ("network", "forward passes"),
    ("softmax resampling", "softmax, uncrop, back to the native grid"),
    ("clean-up", "largest component per structure"),
    ("network QC", "per-slice uncertainty"),
    ("segmentation other", "argmax, copies, bookkeeping"),
    ("indices", "volumes, EF, mass, wall thickness"),
    ("diagnosis", "features and classifier"),
    ("landmarks", "RV insertion points, AHA values"),
    ("strain", "motion tracking and strain"),
    ("analyze other", "volume curve, QC"),
    ("report", "report.png"),
    ("write", "label maps, JSON/CSV, landmark and strain files"),
)


# ------------------------------------------------------------------------------------------ the worker


def _worker(path: str, precision: str, threads: int | None) -> dict:
    """One ``cardiac-mtl analyze`` in this process, with its stages timed."""
    began = time.perf_counter()
    import CardiacMTLLib.analysis.segment as segment

    # an older checkout resamples with torch (imported before the command, as it did); the current one
    # runs without torch where OpenVINO runs the network, and its resampling is timed as the numpy function
    torch = None
    if not hasattr(segment, "resize_bilinear") or os.environ.get("CARDIACMTL_RUNTIME") == "torch":
        import torch
        import torch.nn.functional as F

        if threads:
            torch.set_num_threads(threads)
    if threads:
        try:
            from CardiacMTLLib.models.runtime import set_inference_threads

            set_inference_threads(threads)
        except ImportError:
            pass
    import CardiacMTLLib.actions as actions
    import CardiacMTLLib.analysis.diagnosis.classifiers as classifiers
    import CardiacMTLLib.analysis.qc as qc
    import CardiacMTLLib.outputs as outputs
    import CardiacMTLLib.pipeline as pipeline
    from CardiacMTLApps.cli.mtl import main

    seconds: dict[str, float] = {}
    captured: dict = {}

    def timed(function, stage):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t

        return wrapper

    def wrap(module, name, stage):
        if hasattr(module, name):
            setattr(module, name, timed(getattr(module, name), stage))

    class TimedNet:
        """The network with its calls timed; everything else passes through."""

        def __init__(self, net):
            self.__dict__["_net"] = net

        def __call__(self, *args, **kwargs):
            t = time.perf_counter()
            out = self._net(*args, **kwargs)
            if torch is not None and str(getattr(args[0], "device", "cpu")).startswith("cuda"):
                torch.cuda.synchronize()
            seconds["network"] = seconds.get("network", 0.0) + time.perf_counter() - t
            return out

        def __getattr__(self, name):
            return getattr(self._net, name)

        def __setattr__(self, name, value):
            setattr(self._net, name, value)

    def resampling_stage(x) -> str:
        # one channel: the image on its way in; several: the softmax on its way back
        return "pre-process" if x.ndim == 3 or x.shape[1] == 1 else "softmax resampling"

    def timed_resampling(function):
        def wrapper(x, *args, **kwargs):
            t = time.perf_counter()
            try:
                return function(x, *args, **kwargs)
            finally:
                stage = resampling_stage(x)
                seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t

        return wrapper

    if hasattr(segment, "resize_bilinear"):
        segment.resize_bilinear = timed_resampling(segment.resize_bilinear)
        wrap(segment, "softmax", "softmax resampling")
    if torch is not None:
        F.interpolate = timed_resampling(F.interpolate)
        torch.softmax = timed(torch.softmax, "softmax resampling")
    for name in ("normalise_intensity", "center_crop_or_pad", "crop_field", "heart_field"):
        wrap(segment, name, "pre-process")
    wrap(segment, "uncrop", "softmax resampling")
    wrap(segment, "largest_component_per_structure", "clean-up")
    wrap(qc, "slice_network_scores", "network QC")
    wrap(actions, "read_cine", "read")
    wrap(classifiers, "load_classifier", "model load")
    wrap(outputs, "write_report", "report")
    wrap(actions, "write_outputs", "write+report")

    load_model = pipeline.load_model

    def timed_load(*args, **kwargs):
        t = time.perf_counter()
        model = load_model(*args, **kwargs)
        seconds["model load"] = seconds.get("model load", 0.0) + time.perf_counter() - t
        if not isinstance(model.net, TimedNet):
            model.net = TimedNet(model.net)
        return model

    pipeline.load_model = timed_load
    analyze = actions.analyze

    def captured_analyze(*args, **kwargs):
        captured["result"] = result = analyze(*args, **kwargs)
        return result

    actions.analyze = captured_analyze
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        code = main(["analyze", path, "--out", str(Path(tmp) / "out"), "--precision", precision])
    total = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"analyze {path} failed with status {code}")
    result = captured["result"]
    prov = result.provenance
    segmentation = float(prov["segmentation_s"])
    inner = sum(seconds.get(k, 0.0) for k in STAGE_NAMES[3:8])
    seconds["segmentation other"] = max(segmentation - inner, 0.0)
    for key, stage in (
        ("indices_s", "indices"),
        ("diagnosis_s", "diagnosis"),
        ("landmarks_s", "landmarks"),
        ("strain_s", "strain"),
    ):
        seconds[stage] = float(prov.get(key) or 0.0)
    seconds["report"] = seconds.get("report", 0.0)
    seconds["write"] = seconds.pop("write+report", 0.0) - seconds["report"]
    known = sum(v for k, v in seconds.items() if k != "start-up")
    seconds["analyze other"] = max(total - known, 0.0)
    seconds["start-up"] = started - began
    return {
        "seconds": seconds,
        "in_process_s": time.perf_counter() - began,
        "device": prov.get("device"),
        "frames_slices": list(result.cine.data.shape[:2]),
        "indices": {
            k: result.indices.get(k)
            for k in ("LVEDV (mL)", "LVESV (mL)", "LVEF (%)", "RVEDV (mL)", "LV mass (g)")
        },
        "libfile": pipeline.__file__,
        "torch_imported": "torch" in sys.modules,
    }


STAGE_NAMES = [s for s, _ in STAGES]


def end_as_the_command() -> None:
    """End a worker's process as its checkout's command ends: the current one without the interpreter's
    teardown (``end_process``), an older one through ``sys.exit``."""
    try:
        from CardiacMTLApps.cli.startup import end_process
    except ImportError:
        sys.exit(0)
    end_process(0)


# ------------------------------------------------------------------------------------------ the driver


def generated_cine() -> Path:
    """The 30-frame, 16-slice, 256 x 256 cine as a DICOM study (written once)."""
    folder = CACHE / "cine30"
    if (folder / "complete").is_file():
        return folder
    from CardiacMTLLib.synthetic.dicom import write_cine_dicom
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    case = generate_synthetic_cine(seed=3, num_frames=30, shape=(256, 256, 16), spacing_mm=(1.4, 1.4, 7.0))
    staging = Path(tempfile.mkdtemp(prefix="cine30-", dir=CACHE if CACHE.is_dir() else None))
    write_cine_dicom(case.cine, staging)
    (staging / "complete").write_text("30 frames x 16 slices x 256 x 256, seed 3\n")
    CACHE.mkdir(exist_ok=True)
    staging.rename(folder)
    return folder


def run_once(
    python: str, tree: Path, path: Path, precision: str, threads: int | None, extra_env: dict | None = None
) -> dict:
    env = dict(os.environ)
    env.update(extra_env or {})
    env["PYTHONPATH"] = f"{tree / 'CardiacMTL'}{os.pathsep}{tree / 'CardiacAtlas'}"
    env["TQDM_DISABLE"] = "1"
    command = [python, str(Path(__file__).resolve()), "--worker", str(path), "--precision", precision]
    command += ["--threads", str(threads)] if threads else []
    t = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=str(tree))
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{tree}: analyze {path} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["libfile"].startswith(str(tree)):
        raise SystemExit(f"{tree}: the run imported {report['libfile']}, not this checkout's code")
    # what the process spent before and after the timed call (interpreter start, its end) counts as start-up
    report["seconds"]["start-up"] += max(wall - report["in_process_s"], 0.0)
    report["wall_s"] = wall
    return report


def help_seconds(python: str, tree: Path, runs: int = 3) -> float:
    """The fastest of ``runs`` fresh ``cardiac-mtl --help`` of a checkout (interpreter start included)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{tree / 'CardiacMTL'}{os.pathsep}{tree / 'CardiacAtlas'}"
    command = [
        python,
        "-c",
        "import sys; from CardiacMTLApps.cli.mtl import main; sys.argv[0] = 'cardiac-mtl'; main(['--help'])",
    ]
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, cwd=str(tree), check=True)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base", help="an older checkout of the project to run side by side")
    parser.add_argument(
        "--base-python", default=sys.executable, help="the Python of --base (default: this one)"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"])
    parser.add_argument(
        "--torch-runtime",
        action="store_true",
        help="also run the current checkout with CARDIACMTL_RUNTIME=torch (torch instead of OpenVINO)",
    )
    parser.add_argument(
        "--int8", action="store_true", help="also run the current checkout with --precision int8"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each checkout; the fastest counts")
    parser.add_argument("--cases", default="bivme,cine30", help="comma-separated: bivme, cine30")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads of both checkouts (default: torch's, all cores); 1 on a machine "
        "other work keeps busy, where threads that wait on each other dominate the timings",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.precision, args.threads)), flush=True)
        end_as_the_command()
    # not at the top: a worker imports the checkout it times, which may be an older one
    from CardiacMTLLib.models.device import cpu_description

    cases = {}
    for name in args.cases.split(","):
        if name == "bivme":
            folder = DATA / "bivme_patient1" / "dicom"
            if not folder.is_dir():
                print(f"biv-me study not found at {folder}: skipped", file=sys.stderr)
                continue
            cases["biv-me DICOM study (whole folder, 11 series)"] = folder
        elif name == "cine30":
            cases["generated cine 30 x 16 x 256 x 256 (480 DICOM files)"] = generated_cine()
        else:
            parser.error(f"unknown case {name!r}")
    # (name, python, checkout, environment, precision); int8 is the current OpenVINO runtime's only:
    # the base and the torch run keep to their own auto where it is asked for
    other = "auto" if args.precision == "int8" else args.precision
    trees = [("current", sys.executable, ROOT, {}, args.precision)]
    if args.int8:
        trees.append(("int8", sys.executable, ROOT, {}, "int8"))
    if args.torch_runtime:
        trees.insert(0, ("torch", sys.executable, ROOT, {"CARDIACMTL_RUNTIME": "torch"}, other))
    if args.base:
        trees.insert(0, ("base", args.base_python, Path(args.base).resolve(), {}, other))
    print(
        f"CPU: {cpu_description()}\n"
        f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} CPUs; "
        f"torch threads: {args.threads or 'default'}; precision {args.precision}"
    )
    summary = []
    for label, path in cases.items():
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for name, python, tree, extra_env, precision in trees:
                report = run_once(python, tree, path, precision, args.threads, extra_env)
                if name not in best or report["wall_s"] < best[name]["wall_s"]:
                    best[name] = report
        names = [tree[0] for tree in trees]
        print(f"\n{label}: {best['current']['frames_slices'][0]} frames x "
              f"{best['current']['frames_slices'][1]} slices, {best['current']['device']}")  # fmt: skip
        print(f"  {'stage':<20}" + "".join(f"{n + ' (s)':>14}" for n in names) + "   what")
        for stage, what in STAGES:
            row = "".join(f"{best[n]['seconds'].get(stage, 0.0):14.3f}" for n in names)
            print(f"  {stage:<20}{row}   {what}")
        print(f"  {'end to end':<20}" + "".join(f"{best[n]['wall_s']:14.3f}" for n in names))
        for n in names:
            print(
                f"  indices ({n}): {json.dumps(best[n]['indices'])}; torch imported: {best[n]['torch_imported']}"
            )
        if "base" in best:
            ratio = best["base"]["wall_s"] / best["current"]["wall_s"]
            summary.append(
                f"{label}: base {best['base']['wall_s']:.2f} s, current {best['current']['wall_s']:.2f} s, "
                f"{ratio:.2f}x faster"
            )
        else:
            summary.append(f"{label}: {best['current']['wall_s']:.2f} s")
        if "torch" in best:
            ratio = best["torch"]["wall_s"] / best["current"]["wall_s"]
            summary.append(
                f"  the same code on torch {best['torch']['wall_s']:.2f} s: the default runtime {ratio:.2f}x faster"
            )
        if "int8" in best:
            versus = (
                f"; {best['base']['wall_s'] / best['int8']['wall_s']:.2f}x the base" if "base" in best else ""
            )
            summary.append(f"  with --precision int8 {best['int8']['wall_s']:.2f} s{versus}")
    helps = {
        name: help_seconds(python, tree)
        for name, python, tree, _, _ in trees
        if name not in ("torch", "int8")
    }
    summary.append(
        "cardiac-mtl --help: " + ", ".join(f"{n} {v:.2f} s" for n, v in helps.items()) + " (bar 1 s)"
    )
    print()
    print("\n".join(summary))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
