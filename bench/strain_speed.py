"""Time motion + strain: an ACDC ED/ES pair (expert labels) and a generated 30-frame, 16-slice cine.

    .venv/bin/python bench/strain_speed.py [--data ../shared/data/acdc] [--patients 5] [--analyze]

Prints seconds per call (median and max of the ACDC patients, the generated cine's best of two runs) and,
with ``--analyze``, the share of a whole ``pipeline.analyze`` of the first patient (the model loaded
once, excluded). Bars (issue 17): ED/ES pair <= 1 s, 30-frame 16-slice cine <= 5 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.strain import measure_strain
from CardiacMTLLib.datasets.acdc import ed_es_frames, list_acdc_patients
from CardiacMTLLib.io.cine import read_cine, read_volume
from CardiacMTLLib.synthetic.motion import generate_motion_cine


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(root.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--patients", type=int, default=5)
    parser.add_argument("--analyze", action="store_true", help="also time analyze() of the first patient")
    args = parser.parse_args()
    data = Path(args.data)
    # warm up imports and caches outside the timings
    warm = generate_motion_cine(seed=0, num_frames=4, shape=(64, 64, 4))
    measure_strain(warm.cine, warm.labels, 0, warm.es_index)
    if data.is_dir():
        seconds = []
        for patient, _ in list_acdc_patients(data)[:: max(1, 100 // args.patients)][: args.patients]:
            cine = read_cine(data / patient)
            labels = np.stack(
                [np.rint(read_volume(p)[0]).astype(np.uint8) for _, _, p in ed_es_frames(data, patient)]
            )
            t0 = time.perf_counter()
            measure_strain(cine, labels, 0, 1)
            seconds.append(time.perf_counter() - t0)
            print(f"{patient} {tuple(cine.data.shape)}: {seconds[-1]:.3f} s")
        print(
            f"ACDC ED/ES pair: median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s (bar 1 s)"
        )
        if args.analyze:
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
                f"{patient}: analyze {whole:.2f} s, motion + strain {part:.2f} s ({100 * part / (whole + part):.0f} %)"
            )
    else:
        print(f"ACDC data not found at {data}: skipping the ED/ES pairs")
    case = generate_motion_cine(seed=7, num_frames=30, shape=(160, 160, 16), spacing_mm=(1.4, 1.4, 7.0))
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        result = measure_strain(case.cine, case.labels, case.ed_index, case.es_index, case.rv_insertions)
        runs.append(time.perf_counter() - t0)
    print(
        f"generated cine {tuple(case.cine.data.shape)}: {min(runs):.3f} s (motion {result.extra['motion_s']:.3f} s) "
        "(bar 5 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
