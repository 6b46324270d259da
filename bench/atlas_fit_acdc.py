"""LV model fits of the ACDC patients (expert labels, ED and ES), their volumes, speed, and the ACDC atlas.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/atlas_fit_acdc.py --out runs/acdc_atlas [--patients 1-100]

For every patient: ``fit_labels`` on ``patientNNN_frameMM_gt.nii.gz`` at ED and ES (frames from Info.cfg),
written as a fit folder ``OUT/fits/patientNNN/`` (``lv_model_ED.vtk``, ``lv_model_ES.vtk``, ``fit.json``).
Prints the model's LV cavity volume against the labels' voxel-count volume (bar: within 5 % on the 20
validation patients of the shipped segmentation model's manifest), the fit time per frame (wall and CPU
seconds of this process; bar 1 s), then builds the atlas (``cardiac-atlas build``) and runs
``cardiac-atlas associate`` on the diagnosis group (each class against the rest; bar: DCM and HCM AUC >= 0.9).
The group is read from Info.cfg only here, for the association: fitting never reads it.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from CardiacAtlasLib.fit import fit_labels, model_description
from CardiacAtlasLib.fit_io import write_fit_folder
from CardiacMTLApps.cli.atlas import main as atlas_cli
from CardiacMTLLib.io.acdc import read_acdc_info
from CardiacMTLLib.io.nifti import read_nifti_volume

ROOT = Path(__file__).resolve().parents[1]
ACDC = ROOT.parent / "shared" / "data" / "acdc"
MANIFEST = ROOT / "CardiacMTL" / "CardiacMTLLib" / "weights" / "acdc_unet2d" / "manifest.json"
VOLUME_BAR = 0.05
TIME_BAR_S = 1.0


def patient_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def fit_patient(folder: Path, out: Path | None) -> tuple[list[dict], np.ndarray]:
    """Fit ED and ES; returns the table rows and the shape (2 phases, n_points, 3) mm."""
    info = read_acdc_info(folder / "Info.cfg")
    results, rows = {}, []
    for phase in ("ED", "ES"):
        frame = int(info[phase])
        path = folder / f"{folder.name}_frame{frame:02d}_gt.nii.gz"
        labels, spacing, affine = read_nifti_volume(path)
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit_labels(labels, affine, frame=frame, source=str(path), spacing_mm=spacing)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        results[phase] = result
        s = result.summary
        rows.append(
            {
                "patient": folder.name,
                "group": info.get("Group", ""),
                "phase": phase,
                "model_ml": s["lv_cavity_volume_ml"],
                "segmentation_ml": s["segmentation_lv_volume_ml"],
                "error_percent": 100 * (s["lv_cavity_volume_ml"] / s["segmentation_lv_volume_ml"] - 1),
                "model_mass_g": s["myocardial_mass_g"],
                "segmentation_mass_g": s["segmentation_myocardial_mass_g"],
                "residual_mean_mm": s["residual_mean_mm"],
                "residual_max_mm": s["residual_max_mm"],
                "largest_shift_mm": max((r["magnitude_mm"] for r in s["slice_shifts_mm"]), default=0.0),
                "wall_s": wall,
                "cpu_s": cpu,
            }
        )
    if out is not None:
        write_fit_folder(results, out / folder.name, {"path": str(folder), "kind": "ACDC expert labels"})
    return rows, np.stack([results["ED"].mesh.points_mm, results["ES"].mesh.points_mm])


def _fit_one(task):
    folder, out = task
    return fit_patient(folder, out)


def in_memory_atlas(shapes, case_ids, groups, mesh) -> None:
    """The atlas and the associations without files (where VTK is not installed)."""
    from CardiacAtlasLib.associate import associate_scores
    from CardiacAtlasLib.atlas import build_atlas

    start = time.perf_counter()
    atlas = build_atlas(np.asarray(shapes), case_ids, mesh.faces_endo, mesh.faces_epi, mesh.n_endo)
    print(f"atlas of {len(case_ids)} cases (in memory): {time.perf_counter() - start:.2f} s")
    for k in range(5):
        print(
            f"  mode {k + 1}: SD {atlas.sd_mm_[k]:.1f} mm, {100 * atlas.explained_variance_ratio_[k]:.1f} %"
        )
    labels = np.array([groups[c] for c in case_ids])
    for n_modes in (None, 20):
        result = associate_scores(atlas.scores_, labels, "group", n_modes=n_modes)
        print(f"group vs rest, {result.n_modes} modes, {result.n_folds}-fold CV:")
        for c in result.classes:
            print(f"  {c.label}: AUC {c.auc:.3f} (95 % CI {c.ci_low:.3f}-{c.ci_high:.3f})")


def summarise(rows: list[dict], title: str) -> None:
    errors = np.array([r["error_percent"] for r in rows])
    within = np.mean(np.abs(errors) <= 100 * VOLUME_BAR)
    print(
        f"{title}: {len(rows)} fits, model vs labels LV volume error mean {errors.mean():+.2f} %, mean |error| "
        f"{np.abs(errors).mean():.2f} %, max |error| {np.abs(errors).max():.2f} %, "
        f"{100 * within:.0f} % within {100 * VOLUME_BAR:.0f} %"
    )
    for phase in ("ED", "ES"):
        e = np.array([r["error_percent"] for r in rows if r["phase"] == phase])
        if len(e):
            print(f"  {phase}: mean |error| {np.abs(e).mean():.2f} %, max {np.abs(e).max():.2f} %")
    res = np.array([r["residual_mean_mm"] for r in rows])
    print(f"  contour residual (mean per fit): median {np.median(res):.2f} mm, max {res.max():.2f} mm")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--patients", default="1-100", help="range of patient numbers (default 1-100)")
    parser.add_argument("--no-atlas", action="store_true")
    parser.add_argument("--acdc", type=Path, default=ACDC, help=f"ACDC folder (default {ACDC})")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument(
        "--no-files", action="store_true", help="keep the fits in memory and build the atlas there (no VTK)"
    )
    args = parser.parse_args()
    if not (args.acdc / "patient001").is_dir():
        print(f"ACDC data not found at {args.acdc}")
        return 1
    validation = set(json.loads(MANIFEST.read_text())["training"]["validation_patients"])
    fits = None if args.no_files else args.out / "fits"
    rows, shapes = [], []
    from tqdm import tqdm

    tasks = [(args.acdc / f"patient{n:03d}", fits) for n in patient_range(args.patients)]
    if args.workers > 1:
        from multiprocessing import Pool

        with Pool(args.workers) as pool:
            done = list(tqdm(pool.imap(_fit_one, tasks), total=len(tasks), desc="ACDC patients"))
    else:
        done = [_fit_one(task) for task in tqdm(tasks, desc="ACDC patients")]
    for patient_rows, shape in done:
        rows.extend(patient_rows)
        shapes.append(shape)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "fits.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"model: {model_description()['elements_per_surface']}, smoothing {model_description()['smoothing_first_second']}"
    )
    summarise([r for r in rows if r["patient"] in validation], "validation patients (manifest)")
    summarise(rows, "all patients")
    wall = np.array([r["wall_s"] for r in rows])
    cpu = np.array([r["cpu_s"] for r in rows])
    print(
        f"fit time per frame: wall median {np.median(wall):.2f} s (max {wall.max():.2f}), CPU median "
        f"{np.median(cpu):.2f} s (max {cpu.max():.2f}); bar {TIME_BAR_S:.0f} s"
    )
    if args.no_atlas:
        return 0
    if args.no_files:
        from CardiacAtlasLib.lv_template import MESH_COLUMNS, MESH_ROWS
        from CardiacAtlasLib.mesh import LVMesh, grid_faces

        n = MESH_ROWS * MESH_COLUMNS
        mesh = LVMesh(
            shapes[0][0], grid_faces(MESH_ROWS, MESH_COLUMNS), grid_faces(MESH_ROWS, MESH_COLUMNS, n), n
        )
        case_ids = [task[0].name for task in tasks]
        in_memory_atlas(shapes, case_ids, {r["patient"]: r["group"] for r in rows}, mesh)
        return 0
    atlas_dir = args.out / "atlas"
    folders = sorted(p for p in fits.iterdir() if p.is_dir())
    start = time.perf_counter()
    atlas_cli(["build", *map(str, folders), "--out", str(atlas_dir)])
    print(f"atlas build: {time.perf_counter() - start:.1f} s")
    labels = args.out / "labels.csv"
    groups = {r["patient"]: r["group"] for r in rows}
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id", "group"])
        writer.writerows(sorted(groups.items()))
    atlas_cli(["associate", str(atlas_dir), "--labels", str(labels), "--column", "group",
               "--out", str(args.out / "associations.csv")])  # fmt: skip
    atlas_cli(["associate", str(atlas_dir), "--labels", str(labels), "--column", "group", "--modes", "20",
               "--out", str(args.out / "associations_20modes.csv")])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
