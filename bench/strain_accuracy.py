"""Accuracy of radial and circumferential strain on generated cines whose motion is known exactly.

    .venv/bin/python bench/strain_accuracy.py [--normal 12] [--akinetic 10] [--dcm 3] [--compare 4]

Cines of varied size, pixel spacing (1.1-1.9 mm), slice count and spacing, noise, translation and twist
(CardiacMTLLib.synthetic.motion): normal ones, ones with one akinetic segment (infarct pattern) and ones
with global hypokinesia (DCM). Strain is measured from the true labels with every frame tracked, and the
peaks are compared with the true peaks: mean absolute error (percentage points) of GCS and GRS, of the
segmental peaks, of the segmental ED-to-ES wall thickening, and the wall-motion findings (akinetic
segment found, false akinetic segments). ``--compare N`` also measures the three motion methods on the
ED/ES pairs of the first N cines of each kind (the demons ones are slow) and prints accuracy and time.
Bars (issue 17): GCS <= 1.5, GRS <= 3, segmental CS <= 3 and RS <= 6 points; the akinetic segment found
in >= 9 of 10, no false akinetic segment in the normal cines.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from CardiacMTLLib.analysis.motion import METHODS
from CardiacMTLLib.analysis.strain import measure_strain
from CardiacMTLLib.synthetic.motion import generate_motion_cine


def case_settings(kind: str, index: int) -> dict:
    rng = np.random.default_rng(1000 + index + {"normal": 0, "akinetic": 100, "dcm": 200}[kind])
    spacing = float(rng.uniform(1.1, 1.9))
    fov = rng.uniform(150, 230)
    size = int(np.clip(round(fov / spacing), 96, 192))
    settings = {
        "seed": int(rng.integers(1 << 30)),
        "num_frames": int(rng.integers(14, 26)),
        "shape": (size, size + int(rng.integers(0, 24)), int(rng.integers(6, 13))),
        "spacing_mm": (spacing, spacing, float(rng.uniform(6.0, 10.0))),
        "noise_std": float(rng.uniform(0.02, 0.06)),
        "lv_radius_mm": float(rng.uniform(21, 28)),
        "wall_thickness_mm": float(rng.uniform(7, 11)),
        "endocardial_shortening": float(rng.uniform(0.26, 0.34)),
        "translation_mm": float(rng.uniform(0, 4)),
        "twist_deg": float(rng.uniform(0, 8)),
    }
    if kind == "akinetic":
        settings["akinetic_segment"] = int(rng.integers(1, 17))
    if kind == "dcm":
        settings["hypokinesia"] = float(rng.uniform(0.3, 0.5))
        settings["lv_radius_mm"] = float(rng.uniform(30, 34))
        settings["wall_thickness_mm"] = float(rng.uniform(6, 8))
        settings["shape"] = (max(settings["shape"][0], int(200 / spacing)),) * 2 + (settings["shape"][2],)
    return settings


def errors(case, result, peak: bool) -> dict:
    """Absolute errors (points) against the true peaks (or ED-to-ES values when ``peak`` is false)."""

    def truth(curve, sign):
        return float(sign * np.max(sign * curve)) if peak else float(curve[case.es_index])

    def measured(value, es_value):
        return value if peak else es_value

    gcs = measured(result.global_circumferential_pct, result.es_circumferential_pct)
    grs = measured(result.global_radial_pct, result.es_radial_pct)
    out = {
        "gcs": abs(gcs - truth(case.global_circumferential_pct, -1)),
        "grs": abs(grs - truth(case.global_radial_pct, 1)),
        "seg_cs": [],
        "seg_rs": [],
        "thickening": [],
    }
    for s in result.segments:
        if s.pixels == 0:
            continue
        out["seg_cs"].append(
            abs(s.peak_circumferential_pct - truth(case.segment_circumferential_pct[s.segment], -1))
        )
        out["seg_rs"].append(abs(s.peak_radial_pct - truth(case.segment_radial_pct[s.segment], 1)))
        if s.thickening_pct is not None:
            out["thickening"].append(abs(s.thickening_pct - case.segment_thickening_pct[s.segment]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal", type=int, default=12)
    parser.add_argument("--akinetic", type=int, default=10)
    parser.add_argument("--dcm", type=int, default=3)
    parser.add_argument("--compare", type=int, default=0, help="cines of each kind to compare methods on")
    args = parser.parse_args()
    rows, comparison = [], {m: [] for m in METHODS}
    kinds = [("normal", args.normal), ("akinetic", args.akinetic), ("dcm", args.dcm)]
    print(
        f"{'case':<12}{'shape':>16}{'px mm':>7}{'GCS true':>9}{'meas':>7}{'GRS true':>9}{'meas':>7}  akinetic true/found"
    )
    for kind, count in kinds:
        for i in range(count):
            settings = case_settings(kind, i)
            case = generate_motion_cine(**settings)
            t0 = time.perf_counter()
            result = measure_strain(case.cine, case.labels, case.ed_index, case.es_index, case.rv_insertions)
            seconds = time.perf_counter() - t0
            e = errors(case, result, peak=True)
            rows.append((kind, e, case.akinetic_segments, result.akinetic_segments, seconds))
            shape = "x".join(str(n) for n in case.cine.data.shape)
            print(
                f"{kind + str(i):<12}{shape:>16}{settings['spacing_mm'][0]:>7.2f}"
                f"{case.global_circumferential_pct.min():>9.1f}{result.global_circumferential_pct:>7.1f}"
                f"{case.global_radial_pct.max():>9.1f}{result.global_radial_pct:>7.1f}  "
                f"{case.akinetic_segments}/{result.akinetic_segments}  ({seconds:.2f} s)"
            )
            if i < args.compare:
                for method in METHODS:
                    t0 = time.perf_counter()
                    pair = measure_strain(
                        case.cine,
                        case.labels,
                        case.ed_index,
                        case.es_index,
                        case.rv_insertions,
                        method=method,
                        frame_indices=[case.ed_index, case.es_index],
                    )
                    comparison[method].append(
                        (
                            errors(case, pair, peak=False),
                            case.akinetic_segments,
                            pair.akinetic_segments,
                            time.perf_counter() - t0,
                        )
                    )

    def summary(entries) -> str:
        gcs = np.mean([e["gcs"] for e, *_ in entries])
        grs = np.mean([e["grs"] for e, *_ in entries])
        seg_cs = np.mean(np.concatenate([e["seg_cs"] for e, *_ in entries]))
        seg_rs = np.mean(np.concatenate([e["seg_rs"] for e, *_ in entries]))
        return f"GCS {gcs:.2f}  GRS {grs:.2f}  segmental CS {seg_cs:.2f}  RS {seg_rs:.2f}"

    print("\nmean absolute error of the peaks (percentage points), method 'contours', all frames")
    for kind, _ in kinds:
        chosen = [(e, a, b, s) for k, e, a, b, s in rows if k == kind]
        if chosen:
            print(f"  {kind:<9} ({len(chosen):>2}) {summary(chosen)}")
    print(f"  {'all':<9} ({len(rows):>2}) {summary([(e, a, b, s) for _, e, a, b, s in rows])}")
    thickening = np.concatenate([e["thickening"] for _, e, *_ in rows])
    print(f"  segmental ED-to-ES wall thickening: MAE {thickening.mean():.2f} points")
    akinetic = [(true, found) for k, _, true, found, _ in rows if k == "akinetic"]
    hits = sum(set(true) <= set(found) for true, found in akinetic)
    extra = sum(len(set(found) - set(true)) for true, found in akinetic)
    normal_false = [found for k, _, _, found, _ in rows if k == "normal" and found]
    dcm_false = [found for k, _, _, found, _ in rows if k == "dcm" and found]
    print(
        f"  akinetic segment found in {hits} of {len(akinetic)} (other segments also called akinetic: {extra})"
    )
    print(
        f"  normal cines with a false akinetic segment: {len(normal_false)} of {args.normal} {normal_false}"
    )
    print(f"  DCM cines with an akinetic segment: {len(dcm_false)} of {args.dcm} {dcm_false}")
    print(f"  seconds per cine (motion + strain, all frames): median {np.median([r[4] for r in rows]):.2f}")
    if args.compare:
        print("\nmotion methods on the ED/ES pairs (ED-to-ES values, true labels):")
        for method, entries in comparison.items():
            found = sum(set(t) <= set(f) for _, t, f, _ in entries if t)
            total = sum(1 for _, t, _, _ in entries if t)
            false = sum(1 for _, t, f, _ in entries if not t and f)
            seconds = np.median([s for *_, s in entries])
            print(
                f"  {method:<9} ({len(entries):>2}) {summary(entries)}  akinetic {found}/{total}, "
                f"false in {false}; {seconds:.2f} s per pair"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
