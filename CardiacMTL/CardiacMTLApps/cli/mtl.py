"""``cardiac-mtl``: the command line. Argument parsing, progress and messages only; the work is in the library."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import NoReturn

from CardiacMTLApps.cli.startup import end_process, import_nibabel_without_pydicom
from CardiacMTLApps.cohort import discover_studies
from CardiacMTLLib import __version__
from CardiacMTLLib.atomic import check_output_folder, staged_folder
from CardiacMTLLib.errors import CardiacError, CardiacInputError, run_reporting_errors
from CardiacMTLLib.io.cine import read_volume
from CardiacMTLLib.io.dicom_export import check_dicom_input, write_dicom_exports
from CardiacMTLLib.io.nifti import write_label_map
from CardiacMTLLib.io.patient import checked_body_size
from CardiacMTLLib.models.device import PRECISIONS
from CardiacMTLLib.models.registry import load_model
from CardiacMTLLib.report.text import summary_lines

DEVICE_HELP = "where the network runs: auto (CUDA when torch sees a GPU, else CPU), cpu or cuda"
PRECISION_HELP = (
    "arithmetic of the network: auto (bfloat16 on CPUs that compute it natively, about twice as fast with the "
    "same Dice; else fp32), fp32, bf16, or int8 (the CPU, the shipped network quantised: about 1.7x as fast, "
    "the same Dice on ACDC, indices within a few %% of fp32's)"
)
OVERWRITE_HELP = (
    "replace the results of an earlier run in --out (only the files CardiacMTL wrote there; a folder with "
    "anyone else's files is never written into)"
)


PROGRESS_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames [{elapsed}]"


_OPEN_BARS: list = []  # bars an error or Ctrl-C interrupted: closed before the message (else on their line)


def _progress_bar(description: str):
    """A tqdm bar driven by the library's ``progress(done, total)`` callbacks.

    The bar shows frames done and the time taken, not a rate: frames are segmented in batches and
    reported together, so a rate between two reports of one batch would read as thousands a second."""
    from tqdm import tqdm

    state: dict = {}

    def update(done: int, total: int) -> None:
        if state.get("closed"):  # the stages after the frames report again (cancel points): nothing to show
            return
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=description, leave=False, bar_format=PROGRESS_FORMAT)
            _OPEN_BARS.append(state["bar"])
        state["bar"].n = done
        state["bar"].refresh()
        if done >= total:
            state["bar"].close()
            _OPEN_BARS.remove(state["bar"])
            state["closed"] = True

    return update


def _check_body_size(args: argparse.Namespace) -> None:
    """``--height`` and ``--weight`` a person can have, else a one-line error naming the option."""
    checked_body_size("height", args.height, "--height")
    checked_body_size("weight", args.weight, "--weight")


def _print_summary(result, out_dir: Path) -> None:
    print("\n".join(summary_lines(result, out_dir)))


def _check_dicom_out_apart(dicom_out: str, out: str) -> None:
    """``--dicom-out`` is a folder of its own: the DICOM files are written after ``--out`` is complete,
    so the same folder, or one that holds ``--out``, would be refused or (with ``--overwrite``) would
    replace the results just written. A new folder inside ``--out`` is fine."""
    dicom, results = Path(dicom_out).expanduser().resolve(), Path(out).expanduser().resolve()
    if dicom == results or dicom in results.parents:
        where = "the --out folder" if dicom == results else f"a folder above --out ({out})"
        raise CardiacInputError(
            f"--dicom-out {dicom_out}: is {where}; give the DICOM files a folder of their own "
            "(a new one inside --out will do)"
        )


def _label_map_names(images: list[str]) -> list[str]:
    """The file name of each image's label map, ``<stem>_seg.nii.gz``; two images whose names give the
    same file (``a/x.nii.gz`` and ``b/x.nii.gz``) are refused, as one label map would replace the other."""
    names: dict[str, str] = {}
    for image in images:
        name = f"{Path(image).name.split('.nii')[0]}_seg.nii.gz"
        if name in names:
            raise CardiacInputError(
                f"{names[name]} and {image}: both would be written as {name}; "
                "segment them into separate --out folders, or rename one"
            )
        names[name] = image
    return list(names)


def cmd_analyze(args: argparse.Namespace) -> int:
    from CardiacMTLApps.workflows import analyze_path
    from CardiacMTLLib.analysis.diagnosis.classifiers import load_classifier

    _check_body_size(args)
    inputs = (args.path,) if args.landmarks is None else (args.path, args.landmarks)
    check_output_folder(args.out, inputs=inputs, overwrite=args.overwrite)
    if args.dicom_out:
        _check_dicom_out_apart(args.dicom_out, args.out)
        check_dicom_input(args.path)
        check_output_folder(args.dicom_out, inputs=inputs, overwrite=args.overwrite)
    result = analyze_path(
        args.path,
        args.out,
        height_cm=args.height,
        weight_kg=args.weight,
        sex=args.sex,
        all_frames=args.all_frames,
        device=args.device,
        ed_frame=args.ed,
        es_frame=args.es,
        progress=_progress_bar("segmenting"),
        landmarks_file=args.landmarks,
        model=args.model,
        precision=args.precision,
        classifier=load_classifier(args.diagnosis_model, device=args.device),
        fit_lv_model=args.fit_lv_model,
        overwrite=args.overwrite,
    )
    if args.dicom_out:
        write_dicom_exports(result, args.dicom_out, overwrite=args.overwrite, inputs=inputs)
        print(f"DICOM SEG (ED, ES) and SR written to {args.dicom_out}")
    _print_summary(result, Path(args.out))
    return 0


def cmd_landmarks(args: argparse.Namespace) -> int:
    from CardiacMTLLib.actions import landmarks_path

    points = landmarks_path(
        args.path,
        args.view,
        args.out,
        model_dir=args.model,
        method=args.method,
        overwrite=args.overwrite,
        plane=args.plane,
        device=args.device,
    )
    frames = len({p["frame"] for p in points})
    print(f"{len(points)} mitral hinge points on {frames} frame(s) ({args.view}) written to {args.out}")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from CardiacMTLLib.analysis.segment import segment_volume

    check_output_folder(args.out, inputs=args.images, overwrite=args.overwrite)
    names = _label_map_names(args.images)
    # read every input first: a bad file stops the run before anything is written
    volumes = [(name, *read_volume(p)) for name, p in zip(names, args.images, strict=True)]
    t0 = time.perf_counter()
    model = load_model(args.model, device=args.device, precision=args.precision)
    print(f"model {model.model_id} loaded in {time.perf_counter() - t0:.2f} s on {model.device_text}")
    out_dir = Path(args.out)
    with staged_folder(out_dir, inputs=args.images, overwrite=args.overwrite) as staging:
        for name, image, spacing, affine in tqdm(volumes, desc="segmenting", unit="volume"):
            labels = segment_volume(model, image, spacing)
            write_label_map(labels, affine, staging / name, spacing_mm=spacing)
    print(f"{len(volumes)} label map(s) written to {out_dir}")
    return 0


def cmd_indices(args: argparse.Namespace) -> int:
    from CardiacMTLLib.actions import indices_from_label_maps

    _check_body_size(args)
    document = indices_from_label_maps(
        args.ed, args.es, args.out, height_cm=args.height, weight_kg=args.weight, overwrite=args.overwrite
    )
    print(json.dumps(document["indices"], indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from CardiacMTLApps.workflows import run_demo

    print("generating the synthetic cine (known ground truth) ...")
    result, summary = run_demo(
        args.out,
        seed=args.seed,
        device=args.device,
        overwrite=args.overwrite,
        progress=_progress_bar("segmenting"),
        precision=args.precision,
    )
    _print_summary(result, Path(args.out) / "analysis")
    print("against the generator's ground truth:", json.dumps(summary["dice_vs_truth_all_frames"]))
    print(f"true LVEF {summary['true']['LVEF (%)']} %, measured {summary['measured']['LVEF (%)']} %")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from CardiacMTLApps.batch import run_batch

    studies, ignored = discover_studies(args.input)
    out = Path(args.out).resolve()  # --out inside the cohort's folder: its results are not a study
    ignored += [Path(s.path) for s in studies if Path(s.path).resolve() == out]
    studies = [s for s in studies if Path(s.path).resolve() != out]
    if ignored:
        print(
            f"not studies, ignored: {', '.join(p.name for p in ignored[:10])}"
            + (" ..." if len(ignored) > 10 else "")
        )
    where = args.scheduler or f"a local cluster of {args.workers or 'one per core'} worker process(es)"
    print(f"{len(studies)} studies from {args.input}; running on {where}, device {args.device}")
    summary = run_batch(
        studies,
        args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        device=args.device,
        retries=args.retries,
        retry_failed=args.retry_failed,
        fit_lv_model=args.fit_lv_model,
        model_dir=args.model,
        precision=args.precision,
    )
    print(summary.describe())
    return 0 if summary.failed == 0 and summary.pending == 0 else 1


def cmd_app(args: argparse.Namespace) -> int:
    try:
        from CardiacMTLApps.web.app import main as serve
    except ImportError as e:
        raise CardiacError(
            f"the browser app needs trame-slicer ({e}); install it with: pip install 'cardiac-mtl[app]'"
        ) from e
    serve(
        port=args.port,
        host=args.host,
        acdc_dir=Path(args.data) if args.data else None,
        atlas_dir=Path(args.atlas) if args.atlas else None,
        device=args.device,
        precision=args.precision,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cardiac-mtl",
        description="Cardiac cine MRI (CardiacMTL): segmentation, clinical indices, diagnosis, strain, "
        "landmarks and a report of a study; a cohort on Dask; the browser app.",
    )
    parser.add_argument("--version", action="version", version=f"cardiac-mtl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="segment a cine and compute the clinical indices and report")
    p.add_argument("path", help="ACDC patient folder, NIfTI 3D/4D cine, or folder with a DICOM cine series")
    p.add_argument("--out", required=True, help="output folder: new or empty (written only when complete)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--height", type=float, help="patient height in cm (overrides the input's)")
    p.add_argument("--weight", type=float, help="patient weight in kg (overrides the input's)")
    p.add_argument(
        "--sex",
        choices=["M", "F"],
        help="patient sex, for the criteria with limits for men and women (overrides the input's)",
    )
    p.add_argument(
        "--all-frames",
        action="store_true",
        help="for an ACDC patient folder: every frame of its _4d.nii.gz cine (volume and strain curves over the "
        "cycle) instead of its ED and ES frame files",
    )
    p.add_argument("--ed", type=int, help="end-diastolic frame number (default: input's, else LV curve)")
    p.add_argument("--es", type=int, help="end-systolic frame number (default: input's, else LV curve)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument(
        "--landmarks",
        metavar="FILE",
        help="corrected landmarks.json or landmarks.mrk.json: moved points are marked edited and the "
        "indices that depend on them (AHA wall thickness) are recomputed",
    )
    p.add_argument(
        "--model",
        help="segmentation model: a shipped name (acdc_unet2d, the default; acdc_mtl_unet2d, the multi-task "
        "U-Net with area regression and its QC) or a model folder",
    )
    p.add_argument(
        "--diagnosis-model",
        default="features",
        help="diagnosis model: features (the feature-based ensemble, default: the feature set that "
        "cross-validated better), features-global or features-regional (that ensemble on one feature set), "
        "densenet (the multi-task 3D DenseNet) or a model folder",
    )
    p.add_argument(
        "--fit-lv-model",
        action="store_true",
        help="also fit the LV finite-element model (CardiacAtlas) at ED and ES into OUT/lv_model/",
    )
    p.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="also write a DICOM Segmentation per phase (seg_ED.dcm, seg_ES.dcm) and a measurement report "
        "(sr.dcm) into DIR, referencing the input's images (DICOM inputs only)",
    )
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser(
        "landmarks", help="mitral valve hinge points on every frame of a 2- or 4-chamber long-axis cine"
    )
    p.add_argument(
        "path", help="long-axis cine: DICOM series folder, NIfTI 2D+t (x, y, t) or 4D with one slice"
    )
    p.add_argument("--view", choices=["2ch", "4ch"], required=True, help="long-axis view")
    p.add_argument("--out", required=True, help="output folder (landmarks.json, landmarks.mrk.json)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument(
        "--method",
        choices=["segmentation", "vgg"],
        default="segmentation",
        help="segmentation: hinges where the myocardium ends around the LV cavity of a long-axis U-Net "
        "(default); vgg: the MESA paper's regression network",
    )
    p.add_argument("--model", help="model folder of either kind (it decides the method; default: shipped)")
    p.add_argument(
        "--plane",
        type=int,
        help="for a series of several parallel long-axis planes: the plane (0-based) to read (default: all)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help=DEVICE_HELP)
    p.set_defaults(func=cmd_landmarks)

    p = sub.add_parser("segment", help="segment 3D short-axis NIfTI volumes")
    p.add_argument("images", nargs="+", help="3D NIfTI images")
    p.add_argument("--out", required=True, help="folder for <stem>_seg.nii.gz files (new or empty)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--model", help="model folder (default: the shipped ACDC U-Net)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("indices", help="clinical indices from given ED and ES label maps")
    p.add_argument("--ed", required=True, help="ED label map (0 bg, 1 RV, 2 Myo, 3 LV)")
    p.add_argument("--es", required=True, help="ES label map, same grid as --ed")
    p.add_argument("--height", type=float, help="height in cm (for BSA)")
    p.add_argument("--weight", type=float, help="weight in kg (for BSA)")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an --out file that an earlier `indices` wrote"
    )
    p.set_defaults(func=cmd_indices)

    p = sub.add_parser("demo", help="analyse the built-in synthetic cine and compare with its ground truth")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic cine")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "batch",
        help="analyse a cohort on a Dask cluster (resumable; exit status 1 when a study failed)",
        description="Analyse every study of a cohort on dask.distributed. Results go to OUT/studies/<id>/ "
        "(as `analyze` writes them), one row per study to OUT/cohort.csv and OUT/cohort.parquet. "
        "Re-running the same command resumes: finished studies are skipped.",
    )
    p.add_argument(
        "input",
        help="folder of studies (ACDC patient folders, NIfTI cines, DICOM study folders, mixed) or a CSV "
        "manifest with columns study_id,path[,height_cm,weight_kg,sex]",
    )
    p.add_argument(
        "--out", required=True, help="output folder (studies/, status/, cohort.csv, cohort.parquet)"
    )
    p.add_argument(
        "--workers", type=int, help="local worker processes (default: CPU cores / threads per worker)"
    )
    p.add_argument(
        "--threads-per-worker", type=int, default=1, help="threads of each worker, torch's included"
    )
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786) instead")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument("--retries", type=int, default=2, help="Dask retries of a task that raises (default 2)")
    p.add_argument("--retry-failed", action="store_true", help="redo studies that failed on their own input")
    p.add_argument(
        "--fit-lv-model",
        action="store_true",
        help="also fit each study's LV model into studies/<id>/lv_model/ (then: cardiac-atlas build OUT)",
    )
    p.add_argument(
        "--model", help="segmentation model: a shipped name or a model folder (default acdc_unet2d)"
    )
    p.set_defaults(func=cmd_batch)

    DEFAULT_ACDC = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "acdc"

    p = sub.add_parser("app", help="the browser app (Slicer views in a web page) on http://HOST:PORT/")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)"
    )
    p.add_argument(
        "--data",
        default=str(DEFAULT_ACDC) if DEFAULT_ACDC.is_dir() else None,
        help="folder of ACDC patient folders offered in the case list (default: ../shared/data/acdc if present)",
    )
    p.add_argument(
        "--atlas",
        help="atlas folder (cardiac-atlas build/import-cap, or the CAP release with PCA_ED.mat); default: the "
        "CAP MESA atlas when ../shared/data/cap_lv_atlas_mesa exists, else a synthetic demo atlas",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_nibabel_without_pydicom()  # after --help and argument errors, before any thread starts
    return run_reporting_errors("cardiac-mtl", lambda: _closing_bars(args.func, args), debug=args.debug)


def _closing_bars(command, args):
    """``command(args)``; a progress bar it leaves open (an error, Ctrl-C) is cleared before the message."""
    try:
        return command(args)
    finally:
        while _OPEN_BARS:
            _OPEN_BARS.pop().close()


def run() -> NoReturn:
    """The ``cardiac-mtl`` command: :func:`main`, then the process ends with its status
    (:func:`~CardiacMTLApps.cli.startup.end_process`). Code that runs it inside a process of its own
    (a test, Slicer) calls :func:`main`."""
    end_process(main())


if __name__ == "__main__":
    run()
