"""``cardiac-train``: argument parsing for the trainers."""

from __future__ import annotations

import argparse

from CardiacMTLLib.errors import run_reporting_errors
from CardiacMTLLib.evaluation.segmentation import evaluate_segmentation
from CardiacMTLLib.training.segmentation import train_segmentation


def _add_segmentation_arguments(seg: argparse.ArgumentParser) -> None:
    seg.add_argument("--data", required=True, help="ACDC training folder (patientNNN/...)")
    seg.add_argument("--out", required=True, help="run folder (checkpoint, cache, model/)")
    seg.add_argument("--epochs", type=int, default=50)
    seg.add_argument("--batch-size", type=int, default=16)
    seg.add_argument("--lr", type=float, default=1e-3)
    seg.add_argument("--base-channels", type=int, default=16, help="width of the first level (paper: 64)")
    seg.add_argument("--spacing", type=float, default=1.37, help="in-plane spacing in mm (paper: 1.37)")
    seg.add_argument("--crop", type=int, default=128, help="training crop in pixels")
    seg.add_argument("--infer-size", type=int, default=192, help="inference field in pixels")
    seg.add_argument("--pad-size", type=int, default=288)
    seg.add_argument("--val-per-group", type=int, default=4)
    seg.add_argument("--val-every", type=int, default=5)
    seg.add_argument("--seed", type=int, default=0)
    seg.add_argument("--threads", type=int, default=2)
    seg.add_argument("--amp", choices=["auto", "bf16", "off"], default="auto")
    seg.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    seg.add_argument("--model-id", help="identifier stored in the manifest")
    seg.add_argument("--init", help="start from trained weights: a run's checkpoint.pt or a model folder")
    seg.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up iterations")
    seg.add_argument(
        "--sigma-lr-scale",
        type=float,
        default=30.0,
        help="multi-task only: learning rate of the log task uncertainties relative to --lr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardiac-train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segmentation", help="train the 2D U-Net on ACDC")
    _add_segmentation_arguments(seg)
    seg.set_defaults(network="UNet2D", model_id="acdc-unet2d")
    mtl = sub.add_parser(
        "mtl",
        help="train the multi-task U-Net (segmentation + area regression, learned task uncertainty)",
    )
    _add_segmentation_arguments(mtl)
    mtl.set_defaults(network="MTLUNet2D", model_id="acdc-mtl-unet2d")
    ev = sub.add_parser("evaluate", help="Dice/Hausdorff of a segmentation model on held-out ACDC patients")
    ev.add_argument("--data", required=True, help="ACDC training folder")
    ev.add_argument("--model", required=True, help="model folder (manifest.json + weights.pt)")
    ev.add_argument("--patients", nargs="*", help="patient ids (default: the manifest's validation split)")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev.add_argument(
        "--precision", choices=["auto", "fp32", "bf16"], default="auto", help="arithmetic of the network"
    )
    ev.add_argument("--csv", help="write per-volume scores to this CSV")
    ev.add_argument("--slices-csv", help="write per-slice Dice, areas and QC scores to this CSV")
    ev.add_argument("--write-manifest", action="store_true", help="store the scores in manifest.json")
    from CardiacMTLLib.training.diagnosis import add_parser as add_diagnosis_parser

    add_diagnosis_parser(sub)
    from CardiacMTLLib.training.landmarks import add_parser as add_landmarks_parser

    add_landmarks_parser(sub)
    from CardiacMTLLib.training.densenet import add_parser as add_densenet_parser

    add_densenet_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors("cardiac-train", lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    if args.command in ("segmentation", "mtl"):
        train_segmentation(args)
    elif args.command == "evaluate":
        evaluate_segmentation(args)
    elif args.command == "diagnosis":
        from CardiacMTLLib.training.diagnosis import train_diagnosis

        train_diagnosis(args)
    elif args.command == "landmarks":
        from CardiacMTLLib.training.landmarks import main_landmarks

        main_landmarks(args)
    elif args.command == "densenet":
        from CardiacMTLLib.training.densenet import train_densenet

        train_densenet(args)
