"""``cardiac-atlas``: fit the LV model, build an LV shape atlas, import the CAP MESA atlas, project cases,
test associations.

``fit`` writes ``lv_model_ED.vtk``, ``lv_model_ES.vtk`` and ``fit.json`` from an ``analyze`` output folder or a
CAP/biv-me guide-point folder; ``build`` reads such fit folders (see ``CardiacAtlasLib.mesh`` for the mesh
convention), study folders that hold one in ``lv_model/``, or a whole ``cardiac-mtl batch`` output folder.
Bad input ends with a message naming the file and exit code 2, and leaves no partial output.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from CardiacAtlasLib import __version__
from CardiacMTLApps.cli.startup import end_process
from CardiacMTLLib.atomic import check_output_file, check_output_folder, write_text_atomic
from CardiacMTLLib.errors import run_reporting_errors

SCALING_HELP = (
    "also remove size in the Procrustes alignment (default: position and orientation only, so size stays "
    "part of the shape, as in the MESA atlas)"
)


def _print_variance(atlas, n: int = 5) -> None:
    for k in range(min(n, atlas.n_modes_)):
        print(
            f"  mode {k + 1}: SD {atlas.sd_mm_[k]:.1f} mm, {100 * atlas.explained_variance_ratio_[k]:.1f} % of the variance"
        )


def cmd_fit(args: argparse.Namespace) -> int:
    from CardiacAtlasLib.fit_io import fit_path

    results = fit_path(
        args.path, args.out, all_frames=args.all_frames, progress=not args.quiet, overwrite=args.overwrite
    )
    print(f"LV model of {args.path} -> {args.out}")
    for key in ("ED", "ES"):
        s = results[key].summary
        shifts = [row["magnitude_mm"] for row in s["slice_shifts_mm"]]
        print(
            f"  {key} (frame {s.get('frame')}): residual mean {s['residual_mean_mm']} mm, max "
            f"{s['residual_max_mm']} mm; LV cavity {s['lv_cavity_volume_ml']:.1f} mL"
            + (
                f" (segmentation {s['segmentation_lv_volume_ml']:.1f} mL)"
                if s.get("segmentation_lv_volume_ml") is not None
                else ""
            )
            + f"; myocardium {s['myocardial_mass_g']:.1f} g; largest slice shift "
            f"{max(shifts, default=0.0):.1f} mm; {s['fit_seconds']:.2f} s"
        )
    if args.all_frames:
        print(f"  {len(results) - 2} frames in all (lv_model_frameNNN.vtk)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from CardiacAtlasLib.atlas_io import build_atlas_from_fit_folders, write_atlas

    check_output_folder(args.out, inputs=args.fit_dirs, overwrite=args.overwrite)
    atlas = build_atlas_from_fit_folders(args.fit_dirs, scaling=args.scale, n_modes=args.modes)
    out = write_atlas(
        atlas, args.out, mesh_modes=args.mesh_modes, plot=not args.no_plot, overwrite=args.overwrite
    )
    print(f"atlas of {len(atlas.case_ids_)} cases, {atlas.n_modes_} modes -> {out}")
    _print_variance(atlas)
    return 0


def cmd_import_cap(args: argparse.Namespace) -> int:
    from CardiacAtlasLib.atlas_io import write_atlas
    from CardiacAtlasLib.cap import read_cap_atlas

    inputs = (args.pca_ed, args.pca_es, args.surface_faces)
    check_output_folder(args.out, inputs=inputs, overwrite=args.overwrite)
    atlas = read_cap_atlas(args.pca_ed, args.pca_es, args.surface_faces, phase=args.phase)
    out = write_atlas(
        atlas, args.out, mesh_modes=args.mesh_modes, plot=not args.no_plot, overwrite=args.overwrite
    )
    print(f"CAP MESA atlas ({args.phase}, {len(atlas.case_ids_)} cases, {atlas.n_modes_} modes) -> {out}")
    for phase in atlas.phases:
        mesh = atlas.mesh(atlas.shape(), phase)
        print(f"  mean {phase}: LV cavity {mesh.endo_cavity_volume_ml:.1f} mL")
    _print_variance(atlas)
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from CardiacAtlasLib.atlas_io import is_scores_csv, project_fit_folders, read_atlas, scores_csv

    if args.out:
        check_output_file(args.out, overwrite=args.overwrite, written_by_project=is_scores_csv)
    atlas = read_atlas(args.atlas_dir)
    case_ids, scores = project_fit_folders(atlas, args.fit_dirs)
    text = scores_csv(case_ids, scores, atlas.n_modes_)
    if args.out:
        write_text_atomic(text, args.out)
    else:
        sys.stdout.write(text)
    return 0


def cmd_associate(args: argparse.Namespace) -> int:
    from CardiacAtlasLib.associate import associate, association_csv, is_association_csv

    if args.out:
        check_output_file(
            args.out,
            inputs=(args.labels,),
            overwrite=args.overwrite,
            written_by_project=is_association_csv,
        )
    result = associate(
        args.atlas_dir, args.labels, args.column, n_modes=args.modes, n_folds=args.folds, seed=args.seed
    )
    print(
        f"{result.column}: {result.n_cases} cases ({result.n_unlabelled} atlas cases without a label), "
        f"logistic regression on {result.n_modes} mode scores, {result.n_folds}-fold cross-validated AUC"
    )
    for c in result.classes:
        name = c.label if len(result.classes) > 1 else f"{c.label} (positive)"
        print(
            f"  {name}: AUC {c.auc:.3f} (95 % CI {c.ci_low:.3f}-{c.ci_high:.3f}), {c.n_positive} vs {c.n_negative}"
        )
    if args.out:
        write_text_atomic(association_csv(result), args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cardiac-atlas", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("--version", action="version", version=f"cardiac-atlas {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "fit",
        help="fit the LV finite-element model to a segmentation or to guide points",
        description="Fit the LV model (endocardium and epicardium, prolate spheroidal bicubic Hermite "
        "surfaces; pose from the mitral valve, apex and RV insertion points; breath-hold shifts corrected) "
        "to ED and ES of PATH: an analyze output folder (segmentation/ + indices.json, landmarks.json when "
        "present) or a CAP/biv-me guide-point folder (GPFile_NNN.txt + SliceInfoFile.txt). Writes "
        "lv_model_ED.vtk, lv_model_ES.vtk (and lv_model_frameNNN.vtk with --all-frames) and fit.json.",
    )
    p.add_argument("path", metavar="PATH", help="analyze output folder or guide-point folder")
    p.add_argument("--out", required=True, help="fit folder to write (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    p.add_argument("--all-frames", action="store_true", help="also fit every frame")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "build",
        help="Procrustes + PCA atlas of fitted ED and ES LV models",
        description="Align the concatenated ED+ES models of each case (generalised Procrustes; default: "
        "position and orientation removed, size kept), compute the mean shape and PCA modes, and write "
        "atlas.json/atlas.npz, variance.csv, scores.csv, meshes/ (mean and modes at ±1, 2, 3 SD, VTK) and "
        "modes.png into --out.",
    )
    p.add_argument(
        "fit_dirs",
        nargs="+",
        metavar="FIT_DIR",
        help="folder with lv_model_ED.vtk and lv_model_ES.vtk (or with them in lv_model/), or a cardiac-mtl "
        "batch output folder (every study under studies/ that has a fitted model)",
    )
    p.add_argument("--out", required=True, help="atlas folder to write (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    p.add_argument("--scale", action="store_true", help=SCALING_HELP)
    p.add_argument("--modes", type=int, default=50, help="modes to keep (default 50, at most cases - 1)")
    p.add_argument("--mesh-modes", type=int, default=3, help="modes written as meshes (default 3)")
    p.add_argument("--no-plot", action="store_true", help="skip modes.png")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "import-cap",
        help="import the Cardiac Atlas Project MESA atlas (PCA_ED.mat, PCA_ES.mat, SurfaceFaces.mat)",
        description="Turn the CAP MESA LV atlas into this project's atlas format. --phase ED+ES (default) "
        "makes the concatenated ED+ES atlas from the two published per-phase PCAs; ED or ES imports one "
        "phase as published.",
    )
    p.add_argument("pca_ed", metavar="PCA_ED.mat")
    p.add_argument("pca_es", metavar="PCA_ES.mat")
    p.add_argument("surface_faces", metavar="SurfaceFaces.mat")
    p.add_argument("--out", required=True, help="atlas folder to write (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    p.add_argument("--phase", choices=["ED+ES", "ED", "ES"], default="ED+ES", help="default ED+ES")
    p.add_argument("--mesh-modes", type=int, default=3, help="modes written as meshes (default 3)")
    p.add_argument("--no-plot", action="store_true", help="skip modes.png")
    p.set_defaults(func=cmd_import_cap)

    p = sub.add_parser("project", help="mode scores of new cases on an existing atlas")
    p.add_argument("atlas_dir", metavar="ATLAS_DIR")
    p.add_argument(
        "fit_dirs", nargs="+", metavar="FIT_DIR", help="folder with lv_model_<phase>.vtk per atlas phase"
    )
    p.add_argument("--out", help="CSV to write (default: standard output)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out file an earlier run wrote")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser(
        "associate",
        help="cross-validated AUC of shape scores against a label (MESA Table 5)",
        description="Logistic regression of a binary or categorical label (one class against the rest) on "
        "the first mode scores; stratified 10-fold cross-validated AUC with a 95 % bootstrap interval.",
    )
    p.add_argument("atlas_dir", metavar="ATLAS_DIR")
    p.add_argument("--labels", required=True, help="CSV with a case_id column and the label column")
    p.add_argument("--column", required=True, help="label column to test")
    p.add_argument(
        "--modes", type=int, default=None,
        help="mode scores used (default: 20, or one per 10 labelled cases when fewer than 200)",
    )  # fmt: skip
    p.add_argument("--folds", type=int, default=10, help="cross-validation folds (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the bootstrap")
    p.add_argument("--out", help="also write the AUCs to this CSV")
    p.add_argument("--overwrite", action="store_true", help="replace an --out file an earlier run wrote")
    p.set_defaults(func=cmd_associate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors("cardiac-atlas", lambda: args.func(args), debug=args.debug)


def run() -> NoReturn:
    """The ``cardiac-atlas`` command: :func:`main`, then the process ends with its status
    (:func:`~CardiacMTLApps.cli.startup.end_process`). Code that runs it inside a process of its own
    (a test, Slicer) calls :func:`main`."""
    end_process(main())


if __name__ == "__main__":
    run()
