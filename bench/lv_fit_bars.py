"""The LV model fitting bars: bivme residual at ED, recovery of known breath-hold shifts, time per frame.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/lv_fit_bars.py [--seeds 5] [--no-bivme]

1. ``../shared/data/bivme_patient1/guidepoints``: ``fit`` of every phase; at ED (largest sum of short-axis
   endocardial areas) the mean and max distance of the short-axis LV contour points to the fitted surfaces
   (bar: mean <= 1.0 mm). The guide points are biv-me's own example output, not an independent reading.
2. Generated cines (``CardiacMTLLib.synthetic``, 8 slices of 8 mm, heart shifted per slice by up to 8 mm
   in plane): the per-slice corrections against the known shifts, both without their mean over slices
   (a common shift is a move of the heart) (bar: every slice within 1 mm), at ED and ES.
3. Time per frame (wall and CPU seconds of this process) of every fit above (bar: 1 s).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from CardiacAtlasLib.fit import fit_contours, fit_labels
from CardiacAtlasLib.guidepoints import contours_from_guidepoints, sax_endocardial_area_sum_mm2
from CardiacMTLLib.io.guidepoints import guidepoint_files, read_slice_info
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

ROOT = Path(__file__).resolve().parents[1]
BIVME = ROOT.parent / "shared" / "data" / "bivme_patient1" / "guidepoints"
TIMES: list[tuple[float, float]] = []


def timed(action):
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    TIMES.append((time.perf_counter() - wall, time.process_time() - cpu))
    return result


def bivme(folder: Path) -> None:
    planes = read_slice_info(folder / "SliceInfoFile.txt")
    phases = {n: contours_from_guidepoints(p, planes) for n, p in guidepoint_files(folder)}
    areas = {n: sax_endocardial_area_sum_mm2(d) for n, d in phases.items()}
    ed, es = max(areas, key=areas.get), min(areas, key=areas.get)
    results = {n: timed(lambda d=d: fit_contours(d)) for n, d in phases.items()}
    for name, n in (("ED", ed), ("ES", es)):
        s = results[n].summary
        print(
            f"bivme {name} (phase {n}): SAX contour residual mean {s['residual_sax_mean_mm']:.3f} mm, max "
            f"{s['residual_sax_max_mm']:.3f} mm; all LV points (SAX + LAX) mean {s['residual_mean_mm']:.3f} mm, "
            f"max {s['residual_max_mm']:.3f} mm; without breath-hold correction "
            f"{s['residual_without_shift_correction_mean_mm']:.3f} mm; LV {s['lv_cavity_volume_ml']:.1f} mL, "
            f"mass {s['myocardial_mass_g']:.1f} g; {s['n_points']} points, "
            f"{s['n_points_above_base_left_out']} above the base plane left out"
        )
    sax = np.array([r.summary["residual_sax_mean_mm"] for r in results.values()])
    print(
        f"bivme all {len(sax)} phases: SAX residual mean {sax.mean():.3f} mm (worst phase {sax.max():.3f} mm)"
    )


def shifts(seeds: int) -> None:
    errors = []
    for seed in range(1, seeds + 1):
        case = generate_synthetic_cine(
            seed=seed, num_frames=2, shape=(96, 96, 8), spacing_mm=(2.0, 2.0, 8.0),
            breath_hold_shift_mm=8.0, subslices=1, noise_std=0.0,
        )  # fmt: skip
        for t in (case.ed_index, case.es_index):
            result = timed(
                lambda t=t, c=case: fit_labels(c.labels[t], c.cine.affine, spacing_mm=c.cine.spacing_mm)
            )
            table = result.summary["slice_shifts_mm"]
            found = -np.array([row["in_plane_row_col_mm"] for row in table])
            truth = case.slice_shifts_mm[[row["slice"] for row in table]]
            error = np.linalg.norm((found - found.mean(axis=0)) - (truth - truth.mean(axis=0)), axis=1)
            errors.append(error)
            print(
                f"seed {seed} frame {t}: true shifts up to {np.linalg.norm(truth, axis=1).max():.1f} mm, "
                f"per-slice error max {error.max():.2f} mm, mean {error.mean():.2f} mm; LV model "
                f"{result.summary['lv_cavity_volume_ml']:.1f} mL vs labels "
                f"{result.summary['segmentation_lv_volume_ml']:.1f} mL"
            )
    all_errors = np.concatenate(errors)
    print(
        f"shift recovery over {len(errors)} fits ({len(all_errors)} slices): max error {all_errors.max():.2f} mm, "
        f"mean {all_errors.mean():.2f} mm, {100 * np.mean(all_errors <= 1.0):.0f} % of slices within 1 mm (bar: all)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-bivme", action="store_true")
    parser.add_argument("--bivme", type=Path, default=BIVME, help=f"guide-point folder (default {BIVME})")
    args = parser.parse_args()
    if not args.no_bivme:
        if args.bivme.is_dir():
            bivme(args.bivme)
        else:
            print(f"biv-me guide points not found at {args.bivme}")
    shifts(args.seeds)
    wall, cpu = np.array(TIMES).T
    print(
        f"time per frame over {len(wall)} fits: wall median {np.median(wall):.3f} s (max {wall.max():.3f}), "
        f"CPU median {np.median(cpu):.3f} s (max {cpu.max():.3f}); bar 1 s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
