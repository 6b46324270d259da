"""``cardiac-train``: train and evaluate the networks that inference ships.

The command line only parses: each sub-command builds the configuration dataclass of its trainer in
:mod:`CardiacMTLLib.training` (or of the evaluation) from the arguments and calls it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import fields
from pathlib import Path
from typing import NoReturn

from CardiacMTLApps.cli.startup import end_process
from CardiacMTLLib.errors import CardiacInputError, run_reporting_errors
from CardiacMTLLib.evaluation.segmentation import EvaluationConfig, evaluate_segmentation
from CardiacMTLLib.models.convert import export_openvino
from CardiacMTLLib.models.device import PRECISIONS
from CardiacMTLLib.training.densenet import VARIANTS, DenseNetTrainingConfig, train_densenet
from CardiacMTLLib.training.diagnosis import DiagnosisTrainingConfig, train_diagnosis
from CardiacMTLLib.training.lax_landmarks import LaxLandmarkTrainingConfig, train_lax
from CardiacMTLLib.training.lax_segmentation import LaxSegmentationTrainingConfig, train_lax_segmentation
from CardiacMTLLib.training.rv_landmarks import (
    SEGMENTATION_MANIFEST,
    RvLandmarkTrainingConfig,
    train_landmarks,
)
from CardiacMTLLib.training.segmentation import (
    SegmentationTrainingConfig,
    quantise_for_openvino,
    train_segmentation,
)

DEVICES = ["auto", "cpu", "cuda"]


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
    seg.add_argument("--device", choices=DEVICES, default="auto")
    seg.add_argument("--model-id", help="identifier stored in the manifest")
    seg.add_argument("--init", help="start from trained weights: a run's checkpoint.pt or a model folder")
    seg.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up iterations")
    seg.add_argument(
        "--sigma-lr-scale",
        type=float,
        default=30.0,
        help="multi-task only: learning rate of the log task uncertainties relative to --lr",
    )


def _add_evaluate_parser(sub) -> None:
    ev = sub.add_parser("evaluate", help="Dice/Hausdorff of a segmentation model on held-out ACDC patients")
    ev.add_argument("--data", required=True, help="ACDC training folder")
    ev.add_argument("--model", required=True, help="model folder (manifest.json + weights.pt)")
    ev.add_argument("--patients", nargs="*", help="patient ids (default: the manifest's validation split)")
    ev.add_argument("--device", choices=DEVICES, default="auto")
    ev.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="arithmetic of the network",
    )
    ev.add_argument("--csv", help="write per-volume scores to this CSV")
    ev.add_argument("--slices-csv", help="write per-slice Dice, areas and QC scores to this CSV")
    ev.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --csv and --slices-csv files an earlier evaluate wrote (never any other file)",
    )
    ev.add_argument(
        "--write-manifest",
        action="store_true",
        help="store the scores in the model folder's manifest (the folder is written anew, atomically)",
    )


def _add_diagnosis_parser(sub) -> None:
    parser = sub.add_parser(
        "diagnosis", help="feature table, cross-validation and the feature-based classifier"
    )
    parser.add_argument("--data", required=True, help="ACDC training folder (patientNNN/...)")
    parser.add_argument(
        "--out", required=True, help="run folder (feature tables, cv_predictions.json, model/)"
    )
    parser.add_argument(
        "--segmentation-model", help="segmentation model folder: also measure features on its predictions"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--model-id", default="acdc-features-ensemble")


def _add_landmarks_parser(sub) -> None:
    parser = sub.add_parser(
        "landmarks",
        help="RV insertion points: the VGG16-style regression network and its comparison with the "
        "segmentation-derived detector",
    )
    parser.add_argument(
        "--view", choices=["sax", "lax"], default="sax", help="sax: RV insertions; lax: mitral hinges"
    )
    parser.add_argument(
        "--data",
        required=True,
        help="sax: ACDC training folder; lax: biv-me study folder (dicom/, guidepoints/)",
    )
    parser.add_argument(
        "--method",
        choices=["segmentation", "vgg"],
        default="vgg",
        help="lax: segmentation fine-tunes the --init U-Net on the long-axis LV contours (the shipped "
        "detector); vgg trains the paper's regression network",
    )
    parser.add_argument(
        "--iterations", type=int, default=600, help="lax segmentation: training iterations per model"
    )
    parser.add_argument(
        "--synthetic-cines", type=int, default=40, help="lax: synthetic long-axis cines added"
    )
    parser.add_argument("--real-weight", type=float, default=8.0, help="lax: sampling weight of a real frame")
    parser.add_argument(
        "--out", required=True, help="run folder (checkpoint.pt, caches, model/, comparison.json)"
    )
    parser.add_argument("--width", type=int, default=64, help="channels of the first VGG block (paper: 64)")
    parser.add_argument(
        "--dense-units", type=int, default=2048, help="units of the two dense layers (paper: 2048)"
    )
    parser.add_argument("--size", type=int, default=256, help="input field in pixels (paper: 256)")
    parser.add_argument("--spacing", type=float, default=1.37, help="in-plane spacing of the input (mm)")
    parser.add_argument("--batch-norm", action="store_true", help="batch norm after each convolution")
    parser.add_argument(
        "--batch-size", type=int, help="default: 48 (the paper's) for vgg, 8 for segmentation"
    )
    parser.add_argument(
        "--lr", type=float, help="default: AdaDelta 1.0 (the paper's) for vgg, Adam 3e-4 for segmentation"
    )
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument(
        "--minutes", type=float, default=1e9, help="training time of this call; rerun to resume"
    )
    parser.add_argument(
        "--init",
        help="model folder to start from: a landmark network (the paper's transfer between views), or for "
        "the lax segmentation a segmentation model (default: the shipped ACDC U-Net)",
    )
    parser.add_argument(
        "--split-from",
        default=str(SEGMENTATION_MANIFEST),
        help="manifest whose validation_patients are held out (default: the shipped segmentation model's)",
    )
    parser.add_argument("--segmentation-model", help="segmentation model folder for the detector comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=DEVICES, default="cpu")
    parser.add_argument(
        "--model-id",
        help="default: acdc-vgg-rv-insertion (sax), bivme-mv-hinge-vgg (lax vgg) or bivme-lax-unet2d "
        "(lax segmentation)",
    )


def _add_densenet_parser(sub) -> None:
    parser = sub.add_parser("densenet", help="the thesis' multi-task 3D DenseNet: CV experiment or model")
    parser.add_argument("--data", required=True, help="ACDC training folder (patientNNN/...)")
    parser.add_argument("--out", required=True, help="run folder (cache.npz, results.json, model/)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--ship", choices=list(VARIANTS), help="train this variant on all patients instead")
    parser.add_argument("--size", choices=["cpu", "thesis"], default="cpu", help="network size")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--alpha", type=float, default=0.3, help="weight of the segmentation loss")
    parser.add_argument("--beta", type=float, default=0.6, help="weight of the feature loss in the head")
    parser.add_argument("--input-dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cardiac-train", description=" ".join(__doc__.split("\n\n")[0].split())
    )
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
    _add_evaluate_parser(sub)
    _add_diagnosis_parser(sub)
    _add_landmarks_parser(sub)
    _add_densenet_parser(sub)
    export = sub.add_parser(
        "export-openvino",
        help="convert a segmentation model folder's network for the CPU runtime (network.xml/.bin, "
        "checked against its weights)",
    )
    export.add_argument("model", help="model folder (manifest.json + weights.pt)")
    export.add_argument(
        "--int8-data",
        help="also quantise it to int8, calibrated on network fields of the training patients the manifest "
        "records, read from this ACDC training folder (checked against the fp32 network's labels)",
    )
    return parser


def config_from(cls, args: argparse.Namespace, command: str):
    """An instance of the configuration dataclass ``cls`` from the parsed arguments it has fields for;
    an argument left unset (``None``) takes the field's default."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    if any(f.name == "command" for f in fields(cls)):
        values["command"] = command
    return cls(**values)


def landmarks_config(args: argparse.Namespace, command: str):
    """The configuration of the landmark trainer that ``--view`` and ``--method`` choose."""
    if not Path(args.data).is_dir():
        raise CardiacInputError(f"{args.data}: no such folder (expected the ACDC training data)")
    if args.view == "lax" and args.method == "segmentation":
        return config_from(LaxSegmentationTrainingConfig, args, command)
    if args.view == "lax":
        return config_from(LaxLandmarkTrainingConfig, args, command)
    return config_from(RvLandmarkTrainingConfig, args, command)


TRAINERS = {
    LaxSegmentationTrainingConfig: train_lax_segmentation,
    LaxLandmarkTrainingConfig: train_lax,
    RvLandmarkTrainingConfig: train_landmarks,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    command = "cardiac-train " + " ".join(shlex.quote(a) for a in argv)
    return run_reporting_errors("cardiac-train", lambda: _run(args, command))


def _run(args: argparse.Namespace, command: str) -> None:
    if args.command in ("segmentation", "mtl"):
        train_segmentation(config_from(SegmentationTrainingConfig, args, command))
    elif args.command == "evaluate":
        evaluate_segmentation(config_from(EvaluationConfig, args, command))
    elif args.command == "diagnosis":
        train_diagnosis(config_from(DiagnosisTrainingConfig, args, command))
    elif args.command == "landmarks":
        config = landmarks_config(args, command)
        TRAINERS[type(config)](config)
    elif args.command == "densenet":
        train_densenet(config_from(DenseNetTrainingConfig, args, command))
    elif args.command == "export-openvino":
        record = export_openvino(Path(args.model))
        difference = record["check"]["max_abs_logit_difference_fp32"]
        print(f"{args.model}: converted for OpenVINO; logits within {difference:.1e} of torch's")
        if args.int8_data:
            check = quantise_for_openvino(Path(args.model), Path(args.int8_data))["int8"]["check"]
            print(
                f"{args.model}: quantised to int8; labels as the fp32 network's on "
                f"{100 * check['label_agreement']:.2f} % of the heart's pixels ({check['pixels']} pixels)"
            )


def run() -> NoReturn:
    """The ``cardiac-train`` command: :func:`main`, then the process ends with its status
    (:func:`~CardiacMTLApps.cli.startup.end_process`). Code that runs it inside a process of its own
    (a test, Slicer) calls :func:`main`."""
    end_process(main())
