"""How much longer ``analyze`` takes with the diagnosis than with segmentation and indices alone.

    .venv/bin/python bench/diagnosis_overhead.py [--data ../shared/data/acdc] [--patients patient001 ...]

For each ACDC patient folder: read the cine once, then run ``analyze`` without and with the diagnosis,
the classifier built from scratch every time (as in a fresh ``cardiac-mtl analyze`` process: features,
fitting the ensemble on the shipped table, prediction, criteria). The segmentation model is loaded once.
Prints per patient the two wall times and ``diagnosis_s`` from the provenance, then the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.models.registry import clear_loaded, load_model
from CardiacMTLLib.pipeline import analyze

DEFAULT_PATIENTS = ["patient006", "patient026", "patient046", "patient066", "patient086"]


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(root.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--patients", nargs="+", default=DEFAULT_PATIENTS)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        print(f"ACDC data not found at {args.data}", file=sys.stderr)
        return 1
    model = load_model(device=args.device)
    print(f"device: {model.device_text}")
    analyze(read_cine(Path(args.data) / args.patients[0]), model=model, diagnosis=False)  # warm-up
    extra, inside = [], []
    for patient in args.patients:
        cine = read_cine(Path(args.data) / patient)
        t0 = time.perf_counter()
        analyze(cine, model=model, diagnosis=False)
        without = time.perf_counter() - t0
        clear_loaded()  # a fresh process has no loaded, fitted classifier
        t1 = time.perf_counter()
        result = analyze(cine, model=model, diagnosis=True)
        with_diagnosis = time.perf_counter() - t1
        extra.append(with_diagnosis - without)
        inside.append(result.provenance["diagnosis_s"])
        print(
            f"{patient}: without {without:.2f} s, with diagnosis {with_diagnosis:.2f} s "
            f"(+{with_diagnosis - without:.2f} s; diagnosis_s {result.provenance['diagnosis_s']:.2f}) "
            f"-> {result.diagnosis['class']}"
        )
    print(
        f"median extra time for the diagnosis: {statistics.median(extra):.2f} s "
        f"(max {max(extra):.2f} s); median diagnosis_s {statistics.median(inside):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
