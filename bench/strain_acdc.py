"""Strain on the 100 ACDC training patients: GCS and GRS by group from the predicted segmentations, and
tracking Dice on the validation patients of the shipped model.

    nice -n 10 .venv/bin/python bench/strain_acdc.py [--data ../shared/data/acdc] [--device cpu]
        [--per-group N] [--compare-methods]

For every patient the shipped model segments ED and ES (``pipeline.analyze``, diagnosis off) and
``measure_strain`` gives the ED-to-ES GCS/GRS, oriented by the detected RV insertion points; the table
gives mean and SD per group, the number of akinetic segments and the seconds of motion + strain. For
the 20 validation patients (manifest ``training.validation_patients``) the expert ED myocardium is
carried to ES by the motion estimated from the predicted labels (and, for reference, from the expert
labels, and by the ``"walls"`` field, which carries each border onto its tracked border) and compared
with the expert ES myocardium (Dice), against the Dice of no motion (the floor). The table also gives
the in-plane area of the predicted myocardium at ES over ED: a wall moving in its plane keeps it.
``--compare-methods`` also gives GCS/GRS of the other methods of ``analysis/motion.py`` on the same
labels (slow: a few seconds a patient). Bars (issue 17): NOR mean GCS in [-28, -15] %, GRS in [+20, +45] %, DCM and MINF clearly lower in
magnitude; tracking Dice >= 0.80. The group labels are read for this table only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.motion import METHODS, track_myocardium
from CardiacMTLLib.analysis.strain import measure_strain
from CardiacMTLLib.datasets.acdc import ed_es_frames, list_acdc_patients
from CardiacMTLLib.errors import CardiacError
from CardiacMTLLib.evaluation.metrics import dice
from CardiacMTLLib.io.cine import read_cine, read_volume
from CardiacMTLLib.models.registry import load_model
from CardiacMTLLib.pipeline import analyze
from CardiacMTLLib.types import Cine, Label


def tracking_dice(
    cine: Cine, labels: np.ndarray, ed: int, es: int, expert_ed, expert_es, method: str = "contours"
) -> float:
    motion = track_myocardium(cine, labels, ed, [ed, es], method=method)
    warped = motion.warp_reference_mask(expert_ed == Label.LV_MYOCARDIUM, es)
    return dice(warped, expert_es == Label.LV_MYOCARDIUM)


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(root.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=None, help="first N patients only (a quick look)")
    parser.add_argument("--per-group", type=int, default=None, help="first N patients of each group only")
    parser.add_argument(
        "--compare-methods",
        action="store_true",
        help="also measure GCS/GRS with the other motion methods (walls, labels, images) on the same labels",
    )
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        print(f"ACDC data not found at {data}", file=sys.stderr)
        return 1
    manifest = json.loads((root / "CardiacMTL/CardiacMTLLib/weights/acdc_unet2d/manifest.json").read_text())
    validation = set(manifest["training"]["validation_patients"])
    model = load_model(device=args.device)
    patients = list_acdc_patients(data)[: args.limit]
    if args.per_group:
        patients = [
            (p, g) for p, g in patients if [q for q, h in patients if h == g].index(p) < args.per_group
        ]
    by_method: dict[tuple[str, str], list] = {}
    by_group: dict[str, list] = {}
    tracking = []
    skipped: list[str] = []
    for patient, group in patients:
        cine = read_cine(data / patient)
        result = analyze(cine, model=model, diagnosis=False)
        ed, es = result.ed_index, result.es_index
        t0 = time.perf_counter()
        try:
            strain = measure_strain(cine, result.labels, ed, es, result.landmarks)
        except (CardiacError, ValueError, np.linalg.LinAlgError) as e:  # no wall to follow: listed
            print(f"{patient} {group:<4} no strain: {e}", flush=True)
            skipped.append(patient)
            continue
        seconds = time.perf_counter() - t0
        for method in METHODS if args.compare_methods else ():
            other = strain if method == "contours" else None
            if other is None:
                other = measure_strain(cine, result.labels, ed, es, result.landmarks, method=method)
            by_method.setdefault((group, method), []).append(
                (other.global_circumferential_pct, other.global_radial_pct)
            )
        by_group.setdefault(group, []).append(
            (
                strain.global_circumferential_pct,
                strain.global_radial_pct,
                len(strain.akinetic_segments),
                seconds,
                (result.labels[es] == Label.LV_MYOCARDIUM).sum()
                / (result.labels[ed] == Label.LV_MYOCARDIUM).sum(),
            )
        )
        line = (
            f"{patient} {group:<4} GCS {strain.global_circumferential_pct:6.1f}  "
            f"GRS {strain.global_radial_pct:6.1f}  akinetic {strain.akinetic_segments}  {seconds:.2f} s"
        )
        if patient in validation:
            frames = {number: label for number, _, label in ed_es_frames(data, patient)}
            expert = {
                number: np.rint(read_volume(path)[0]).astype(np.uint8) for number, path in frames.items()
            }
            expert_ed = expert[cine.frame_numbers[ed]]
            expert_es = expert[cine.frame_numbers[es]]
            floor = dice(expert_ed == Label.LV_MYOCARDIUM, expert_es == Label.LV_MYOCARDIUM)
            predicted = tracking_dice(cine, result.labels, ed, es, expert_ed, expert_es)
            labels = np.stack([expert_ed if t == ed else expert_es for t in range(cine.num_frames)])
            from_expert = tracking_dice(cine, labels, ed, es, expert_ed, expert_es)
            walls = tracking_dice(cine, result.labels, ed, es, expert_ed, expert_es, method="walls")
            tracking.append((floor, predicted, from_expert, walls))
            line += (
                f"  tracking Dice {predicted:.3f} (expert motion {from_expert:.3f}, walls {walls:.3f}, "
                f"no motion {floor:.3f})"
            )
        print(line, flush=True)
    print("\nED-to-ES strain from the predicted segmentations (mean +- SD, %)")
    print(
        f"{'group':<6}{'n':>3}{'GCS':>16}{'GRS':>16}{'akinetic segs':>15}{'with any':>10}{'s':>7}"
        f"{'myo ES/ED':>11}"
    )
    for group in sorted(by_group):
        values = np.array(by_group[group], dtype=float)
        print(
            f"{group:<6}{len(values):>3}{values[:, 0].mean():>9.1f} +- {values[:, 0].std():<4.1f}"
            f"{values[:, 1].mean():>9.1f} +- {values[:, 1].std():<4.1f}{values[:, 2].mean():>15.2f}"
            f"{np.mean(values[:, 2] > 0):>10.2f}{np.median(values[:, 3]):>7.2f}{values[:, 4].mean():>11.3f}"
        )
    if by_method:
        print("\nGCS / GRS (mean, %) by motion method on the same predicted labels")
        for (group, method), values in sorted(by_method.items()):
            v = np.array(values, dtype=float)
            print(f"{group:<6}{method:<10}{len(v):>3}{v[:, 0].mean():>9.1f}{v[:, 1].mean():>9.1f}")
    if skipped:
        print(f"no strain for {len(skipped)} patients: {', '.join(skipped)}")
    if tracking:
        t = np.array(tracking)
        print(
            f"\ntracking Dice of the myocardium ED -> ES on {len(t)} validation patients: "
            f"{t[:, 1].mean():.3f} (motion from the predicted labels), {t[:, 2].mean():.3f} (from the "
            f"expert labels), no motion {t[:, 0].mean():.3f}; the walls field {t[:, 3].mean():.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
