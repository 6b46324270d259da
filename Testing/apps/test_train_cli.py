"""``cardiac-train`` parses only: the README's commands become the trainers' configuration dataclasses."""

from __future__ import annotations

import shlex

import pytest

from CardiacMTLApps.cli.train import build_parser, config_from, landmarks_config
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.evaluation.segmentation import EvaluationConfig
from CardiacMTLLib.models.registry import default_model_dir
from CardiacMTLLib.training.densenet import DenseNetTrainingConfig
from CardiacMTLLib.training.diagnosis import DiagnosisTrainingConfig
from CardiacMTLLib.training.lax_landmarks import LaxLandmarkTrainingConfig
from CardiacMTLLib.training.lax_segmentation import LaxSegmentationTrainingConfig
from CardiacMTLLib.training.rv_landmarks import RvLandmarkTrainingConfig
from CardiacMTLLib.training.segmentation import SegmentationTrainingConfig


def _config(cls, line: str):
    argv = shlex.split(line)
    return config_from(cls, build_parser().parse_args(argv), "cardiac-train " + line)


def test_segmentation_and_mtl_commands_give_their_networks_and_ids():
    seg = _config(SegmentationTrainingConfig, "segmentation --data d --out r --epochs 50 --crop 128")
    assert (seg.network, seg.model_id, seg.epochs, seg.crop, seg.lr) == (
        "UNet2D",
        "acdc-unet2d",
        50,
        128,
        1e-3,
    )
    assert (
        seg.init is None
        and seg.command == "cardiac-train segmentation --data d --out r --epochs 50 --crop 128"
    )
    mtl = _config(
        SegmentationTrainingConfig, "mtl --data d --out r --lr 3e-4 --warmup 100 --init r/checkpoint.pt"
    )
    assert (mtl.network, mtl.model_id, mtl.multi_task) == ("MTLUNet2D", "acdc-mtl-unet2d", True)
    assert (mtl.lr, mtl.warmup, mtl.init) == (3e-4, 100, "r/checkpoint.pt")
    assert _config(SegmentationTrainingConfig, "mtl --data d --out r --model-id x").model_id == "x"


def test_evaluate_diagnosis_and_densenet_commands():
    ev = _config(EvaluationConfig, "evaluate --data d --model m --write-manifest --slices-csv s.csv")
    assert ev == EvaluationConfig(data="d", model="m", write_manifest=True, slices_csv="s.csv")
    diag = _config(DiagnosisTrainingConfig, "diagnosis --data d --out r --segmentation-model m")
    assert (diag.segmentation_model, diag.model_id, diag.folds) == ("m", "acdc-features-ensemble", 5)
    dn = _config(
        DenseNetTrainingConfig, "densenet --data d --out r --epochs 20 --ship diagnosis+segmentation"
    )
    assert (dn.ship, dn.epochs, dn.batch_size, dn.alpha) == ("diagnosis+segmentation", 20, 4, 0.3)
    assert _config(DenseNetTrainingConfig, "densenet --data d --out r").variants == [
        "diagnosis",
        "diagnosis+segmentation",
        "diagnosis+segmentation+features",
    ]


def test_landmark_commands_choose_the_trainer_and_its_defaults(tmp_path):
    def config(line):
        return landmarks_config(build_parser().parse_args(shlex.split(line)), "cardiac-train " + line)

    sax = config(f"landmarks --data {tmp_path} --out r --width 8 --dense-units 512 --batch-norm")
    assert isinstance(sax, RvLandmarkTrainingConfig)
    assert (sax.width, sax.dense_units, sax.batch_norm, sax.batch_size, sax.lr) == (8, 512, True, 48, 1.0)
    assert (sax.model_id, sax.device, sax.threads) == ("acdc-vgg-rv-insertion", "cpu", 1)
    assert sax.split_from == str(default_model_dir() / "manifest.json")
    vgg = config(f"landmarks --view lax --data {tmp_path} --out r --init runs/rv --epochs 80")
    assert isinstance(vgg, LaxLandmarkTrainingConfig)
    assert (vgg.init, vgg.epochs, vgg.batch_size, vgg.synthetic_cines) == ("runs/rv", 80, 48, 40)
    seg = config(f"landmarks --view lax --method segmentation --data {tmp_path} --out r")
    assert isinstance(seg, LaxSegmentationTrainingConfig)
    assert (seg.batch_size, seg.lr, seg.iterations, seg.model_id) == (8, 3e-4, 600, "bivme-lax-unet2d")
    assert seg.init == str(default_model_dir())
    assert (
        config(f"landmarks --view lax --method segmentation --data {tmp_path} --out r --lr 1e-3").lr == 1e-3
    )
    with pytest.raises(CardiacInputError, match="no such folder"):
        config(f"landmarks --data {tmp_path / 'missing'} --out r")


def test_cardiac_train_reports_a_missing_data_folder_as_a_user_error(tmp_path, capsys):
    from CardiacMTLApps.cli.train import main

    assert main(["landmarks", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "no such folder" in capsys.readouterr().err
