"""``cardiac-train`` parses only: the README's commands become the trainers' configuration dataclasses."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
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


# --------------------------------------------------------------------------------------------------
# cardiac-train segmentation: options, data and the run folder are checked before any work


def _tiny_acdc(root: Path) -> Path:
    """ACDC-like patient folders with an ED and an ES frame and their labels (small synthetic hearts)."""
    from CardiacMTLLib.synthetic.sax import write_acdc_like_patients

    return write_acdc_like_patients(root)


QUICK = ["--batch-size", "2", "--base-channels", "2", "--crop", "32", "--infer-size", "64", "--pad-size", "64",
         "--spacing", "2.5", "--val-per-group", "1", "--warmup", "1", "--amp", "off", "--device", "cpu",
         "--threads", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_acdc(tmp_path_factory) -> Path:
    return _tiny_acdc(tmp_path_factory.mktemp("acdc") / "acdc")


def _train_refused(argv, capsys, *fragments) -> str:
    from CardiacMTLApps.cli.train import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("cardiac-train: error:")]
    assert "Traceback" not in err and len(errors) == 1, err  # a progress bar may come before it
    for fragment in fragments:
        assert fragment in errors[0], err
    return errors[0]


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["--epochs", "-1"], "--epochs must be at least 1, got -1"),
        (["--base-channels", "0"], "--base-channels must be at least 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--lr", "0"], "--lr must be positive"),
        (["--crop", "30"], "--crop must be a multiple of 16"),
        (["--val-per-group", "2"], "0 training patients"),
        (["--batch-size", "999"], "fewer than --batch-size 999"),  # found once the cache is built
    ],
)
def test_training_refuses_options_that_cannot_train_and_leaves_no_folder(
    tiny_acdc, tmp_path, capsys, options, fragment
):
    run = tmp_path / "runs" / "r"
    _train_refused(
        ["segmentation", "--data", str(tiny_acdc), "--out", str(run), *QUICK, *options], capsys, fragment
    )
    assert not (tmp_path / "runs").exists()


def test_training_refuses_a_folder_that_is_not_its_run_and_leaves_it_untouched(tiny_acdc, tmp_path, capsys):
    mine = tmp_path / "user1"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's notes")
    argv = ["segmentation", "--data", str(tiny_acdc), *QUICK]
    _train_refused([*argv, "--out", str(mine)], capsys, "user1", "notes.txt")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    np.save(theirs / "cache.npy", np.zeros(3))
    (theirs / "cache.npy").rename(theirs / "cache.npz")  # a file of that name, not the trainer's cache
    _train_refused([*argv, "--out", str(theirs)], capsys, "cache.npz")
    assert sorted(p.name for p in theirs.iterdir()) == ["cache.npz"]
    empty = tmp_path / "empty"
    _train_refused(
        ["segmentation", "--data", str(empty), "--out", str(tmp_path / "r"), *QUICK], capsys, "no such folder"
    )
    empty.mkdir()
    _train_refused(
        ["segmentation", "--data", str(empty), "--out", str(tmp_path / "r"), *QUICK],
        capsys,
        "no ACDC patient",
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # a one-epoch network may find no heart
def test_an_interrupted_training_run_resumes_in_its_folder(tiny_acdc, tmp_path, capsys, monkeypatch):
    import CardiacMTLLib.training.segmentation as trainer
    from CardiacMTLApps.cli.train import main
    from CardiacMTLLib.atomic import OUTPUT_MANIFEST

    monkeypatch.setattr(trainer, "convert_for_openvino", lambda *a: None)  # not what is tested here
    run = tmp_path / "run"
    argv = ["segmentation", "--data", str(tiny_acdc), "--out", str(run), *QUICK, "--epochs", "1"]
    with monkeypatch.context() as m:  # the run is stopped while the model is written, after its checkpoint
        m.setattr(trainer, "write_segmentation_model", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        assert main(argv) == 130
    assert sorted(p.name for p in run.iterdir()) == sorted([OUTPUT_MANIFEST, "cache.npz", "checkpoint.pt"])
    capsys.readouterr()
    (run / OUTPUT_MANIFEST).unlink()  # as a run folder from before run folders had a manifest
    assert main(argv) == 0
    assert "resuming from epoch 1" in capsys.readouterr().out
    assert (run / "model" / "weights.pt").is_file() and not [p for p in run.iterdir() if ".partial" in p.name]
    listed = json.loads((run / OUTPUT_MANIFEST).read_text())["files"]
    assert {f.split("/")[0] for f in listed} == {"cache.npz", "checkpoint.pt", "model"}
    (run / "notes.txt").write_text("a note the user keeps beside the run")
    assert main([*argv[:-1], "2"]) == 0  # one more epoch; the user's note stays
    assert "resuming from epoch 1" in capsys.readouterr().out and (run / "notes.txt").is_file()
