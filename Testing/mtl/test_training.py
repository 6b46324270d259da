"""The training side: the one ACDC split, the one Dice, the one model-folder writer and reader, the load-once
cache, and a segmentation model trained and evaluated end to end on a tiny ACDC-like cohort."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from CardiacMTLLib.datasets.acdc import ACDC_GROUPS, acdc_split
from CardiacMTLLib.errors import CardiacInputError, CardiacModelError, CardiacOutputError
from CardiacMTLLib.evaluation.metrics import dice, dice_by_structure, dice_per_class
from CardiacMTLLib.models.nets.unet import UNet2D
from CardiacMTLLib.models.registry import (
    default_model_dir,
    load_model,
    read_model_folder,
    sha256_of,
    write_model_folder,
)
from CardiacMTLLib.types import CLASSES, Label, label_names_document


def _info_only_cohort(root: Path, per_group: int) -> Path:
    """ACDC-like patient folders holding only ``Info.cfg`` (enough to list and split them)."""
    number = 1
    for group in ACDC_GROUPS:
        for _ in range(per_group):
            folder = root / f"patient{number:03d}"
            folder.mkdir(parents=True)
            (folder / "Info.cfg").write_text(f"ED: 1\nES: 2\nGroup: {group}\n")
            number += 1
    return root


def test_the_split_holds_out_the_same_number_of_every_group_and_is_seeded(tmp_path):
    data = _info_only_cohort(tmp_path / "acdc", per_group=6)
    split = acdc_split(data, val_per_group=2, seed=3)
    assert len(split.validation) == 10 and len(split.train) == 20
    assert not set(split.train) & set(split.validation)
    groups = {f"patient{n:03d}": ACDC_GROUPS[(n - 1) // 6] for n in range(1, 31)}
    assert sorted(groups[p] for p in split.validation) == sorted(ACDC_GROUPS * 2)
    assert acdc_split(data, val_per_group=2, seed=3) == split
    assert acdc_split(data, val_per_group=2, seed=4) != split


def test_the_split_from_a_manifest_holds_out_its_validation_patients(tmp_path):
    data = _info_only_cohort(tmp_path / "acdc", per_group=2)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"training": {"validation_patients": ["patient004", "patient001"]}}))
    split = acdc_split(data, from_manifest=manifest)
    assert split.validation == ["patient001", "patient004"]
    assert len(split.train) == 8 and "patient004" not in split.train
    manifest.write_text("{}")
    with pytest.raises(CardiacInputError, match="validation_patients"):
        acdc_split(data, from_manifest=manifest)


@pytest.mark.data
def test_the_split_is_the_one_the_shipped_segmentation_model_recorded(acdc_dir):
    recorded = json.loads((default_model_dir() / "manifest.json").read_text())["training"]
    split = acdc_split(acdc_dir, val_per_group=4, seed=0)
    assert split.validation == recorded["validation_patients"]
    assert split.train == recorded["train_patients"]


def test_dice_of_masks_label_maps_and_structures():
    truth = np.zeros((2, 10, 10), dtype=np.uint8)
    truth[:, 2:6, 2:6] = Label.LV_CAVITY  # 32 voxels
    truth[:, 6:8, 2:6] = Label.RV_CAVITY  # 16 voxels
    pred = truth.copy()
    pred[:, 2:4, 2:6] = Label.LV_MYOCARDIUM  # half the LV becomes myocardium
    assert dice(pred == 3, truth == 3) == pytest.approx(2 * 16 / (16 + 32))
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert dice(pred == 2, truth == 2) == 0.0
    assert dice_per_class(pred, truth) == {1: 1.0, 2: 0.0, 3: pytest.approx(2 / 3)}
    by_structure = dice_by_structure(pred, truth)
    assert list(by_structure) == ["LV", "RV", "Myo"]
    assert by_structure == {"LV": pytest.approx(2 / 3), "RV": 1.0, "Myo": 0.0}
    with pytest.raises(ValueError, match="shape"):
        dice(pred[0] == 3, truth == 3)


def _tiny_net_state() -> dict:
    torch.manual_seed(0)
    return UNet2D(in_channels=1, num_classes=4, base_channels=2, depth=2).state_dict()


TINY_MANIFEST = {
    "model_id": "tiny",
    "network": "UNet2D",
    "network_kwargs": {"in_channels": 1, "num_classes": 4, "base_channels": 2, "depth": 2},
    "preprocessing": {"target_spacing_mm": 2.0, "input_size": 32},
}


def test_a_model_folder_round_trips_with_its_checksum_in_half_precision(tmp_path):
    state = _tiny_net_state()
    folder = write_model_folder(tmp_path / "model", state, TINY_MANIFEST, {"notes.txt": "hello"})
    manifest, loaded = read_model_folder(folder)
    assert manifest["sha256"]["weights.pt"] == sha256_of(folder / "weights.pt")
    assert (folder / "notes.txt").read_text() == "hello"
    key = "encoders.0.0.weight"
    assert loaded[key].dtype == torch.float32
    torch.testing.assert_close(loaded[key], state[key].half().float())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    # a corrupted weights file is found by the reader
    (folder / "weights.pt").write_bytes((folder / "weights.pt").read_bytes()[:-8])
    with pytest.raises(CardiacModelError, match="sha256"):
        read_model_folder(folder)


def test_rewriting_a_model_folder_keeps_foreign_files_and_a_failed_write_changes_nothing(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    torch.save(_tiny_net_state(), folder / "weights.pt")  # an older run's folder, written in place
    (folder / "manifest.json").write_text(json.dumps(TINY_MANIFEST))
    (folder / "MODEL_CARD.md").write_text("# card")
    write_model_folder(folder, _tiny_net_state(), {**TINY_MANIFEST, "version": "2"})
    assert json.loads((folder / "manifest.json").read_text())["version"] == "2"
    assert (folder / "MODEL_CARD.md").read_text() == "# card"
    before = (folder / "manifest.json").read_text()
    with pytest.raises(FileNotFoundError):
        write_model_folder(folder, None, {**TINY_MANIFEST, "version": "3"}, {"weights.pt": tmp_path / "none"})
    assert (folder / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_folder_that_is_not_a_model_folder_is_never_written_over(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "patient001.nii.gz").write_bytes(b"image")
    with pytest.raises(CardiacOutputError, match="did not write"):
        write_model_folder(folder, _tiny_net_state(), TINY_MANIFEST)
    assert sorted(p.name for p in folder.iterdir()) == ["patient001.nii.gz"]


def test_a_model_is_loaded_once_until_its_folder_is_rewritten(tmp_path):
    folder = write_model_folder(tmp_path / "model", _tiny_net_state(), TINY_MANIFEST)
    first = load_model(folder, device="cpu", precision="fp32")
    assert load_model(tmp_path / "model", device="cpu", precision="fp32") is first
    assert load_model(folder, device="cpu", precision="bf16") is not first
    assert load_model(folder, device="cpu", precision="fp32", cached=False) is not first
    write_model_folder(folder, _tiny_net_state(), {**TINY_MANIFEST, "version": "2"})
    again = load_model(folder, device="cpu", precision="fp32")
    assert again is not first and again.version == "2"


# --------------------------------------------------------------------------------------------------
# end to end: cardiac-train segmentation, then evaluate --write-manifest


def _tiny_acdc(root: Path) -> Path:
    """Two groups of two patients, each with an ED and an ES frame and their labels (synthetic hearts)."""
    from CardiacMTLLib.synthetic.sax import write_acdc_like_patients

    return write_acdc_like_patients(root, info="Height: 170\nWeight: 70\n")


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # a one-epoch network may find no heart
def test_cardiac_train_writes_a_model_that_evaluate_scores_without_rewriting_it_in_place(tmp_path):
    from CardiacMTLApps.cli.train import main

    data, run = _tiny_acdc(tmp_path / "acdc"), tmp_path / "run"
    quick = ["--epochs", "1", "--batch-size", "2", "--base-channels", "2", "--crop", "32"]
    quick += ["--infer-size", "64", "--pad-size", "64", "--spacing", "2.5", "--val-per-group", "1"]
    quick += ["--warmup", "1", "--amp", "off", "--device", "cpu", "--threads", "1"]
    assert main(["segmentation", "--data", str(data), "--out", str(run), *quick]) == 0
    model_dir = run / "model"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert (
        manifest["labels"]
        == label_names_document(short=True)
        == {"0": "background", "1": "RV", "2": "Myo", "3": "LV"}
    )
    assert manifest["training"]["command"].startswith("cardiac-train segmentation --data")
    assert len(manifest["training"]["validation_patients"]) == 2
    assert set(manifest["training"]["history"][0]) >= {"val_dice_RV", "val_dice_Myo", "val_dice_LV"}
    assert manifest["sha256"]["weights.pt"] == sha256_of(model_dir / "weights.pt")
    assert load_model(model_dir, device="cpu").model_id == "acdc-unet2d"
    weights = (model_dir / "weights.pt").read_bytes()
    manifest_inode = (model_dir / "manifest.json").stat().st_ino

    scores_csv = tmp_path / "scores.csv"
    assert main(["evaluate", "--data", str(data), "--model", str(model_dir), "--write-manifest",
                 "--device", "cpu", "--csv", str(scores_csv)]) == 0  # fmt: skip
    scored = json.loads((model_dir / "manifest.json").read_text())
    summary = scored["scores"]["validation_native_grid"]
    assert summary["patients"] == 2 and summary["volumes"] == 4
    assert 0.0 <= summary["dice_LV"] <= 1.0
    assert (model_dir / "weights.pt").read_bytes() == weights
    assert scored["sha256"] == manifest["sha256"]
    assert (model_dir / "manifest.json").stat().st_ino != manifest_inode  # a new file moved in
    assert scores_csv.read_text().startswith("patient,frame,dice_LV,hd_LV_mm")
    assert not [p for p in run.iterdir() if p.name.startswith(".model")]
    # its own table is replaced only with --overwrite, and then as a new file moved in
    again = [
        "evaluate",
        "--data",
        str(data),
        "--model",
        str(model_dir),
        "--device",
        "cpu",
        "--csv",
        str(scores_csv),
    ]
    assert main(again) == 2
    table_inode = scores_csv.stat().st_ino
    assert main([*again, "--overwrite"]) == 0
    assert scores_csv.stat().st_ino != table_inode
    assert scores_csv.read_text().startswith("patient,frame,dice_LV,hd_LV_mm")
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("option", ["--csv", "--slices-csv"])
def test_evaluate_never_writes_over_a_file_it_did_not_write(tmp_path, capsys, option):
    from CardiacMTLApps.cli.train import main

    data = tmp_path / "acdc"
    (data / "patient001").mkdir(parents=True)
    info = data / "patient001" / "Info.cfg"
    info.write_text("ED: 1\nES: 12\nGroup: NOR\n")
    argv = ["evaluate", "--data", str(data), "--model", str(default_model_dir()), option, str(info)]
    for extra in ([], ["--overwrite"]):
        assert main([*argv, *extra]) == 2  # refused before the model is loaded or a patient read
        err = capsys.readouterr().err
        assert (
            "Info.cfg: exists and CardiacMTL did not write it" in err and len(err.strip().splitlines()) == 1
        )
    assert info.read_text() == "ED: 1\nES: 12\nGroup: NOR\n"
    same = ["--csv", str(tmp_path / "t.csv"), "--slices-csv", str(tmp_path / "t.csv")]
    assert main(["evaluate", "--data", str(data), "--model", str(default_model_dir()), *same]) == 2
    assert "same file" in capsys.readouterr().err and not list(tmp_path.glob("*.csv"))


def _feature_rows(num_per_class: int = 5, seed: int = 0):
    """Feature rows whose global features tell the classes apart only roughly and whose regional ones
    tell them apart exactly (to check the bookkeeping of the cross-validation, not a classifier)."""
    from CardiacMTLLib.analysis.diagnosis.features import REGIONAL_FEATURES, TABLE_FEATURES

    rng = np.random.default_rng(seed)
    classes = [c for c in CLASSES for _ in range(num_per_class)]
    rows = []
    for cls in classes:
        code = CLASSES.index(cls)
        row = {name: float(rng.normal()) for name in TABLE_FEATURES}
        row.update({name: 10.0 * code + 0.1 * row[name] for name in REGIONAL_FEATURES})
        rows.append(row)
    return [f"patient{i:03d}" for i in range(1, len(classes) + 1)], classes, rows


def test_diagnosis_cross_validation_judges_both_feature_sets_on_the_same_folds_of_every_class():
    from CardiacMTLLib.analysis.diagnosis.features import feature_names
    from CardiacMTLLib.training.diagnosis import choose_feature_set, cross_validate, fold_patients

    patients, classes, rows = _feature_rows(10)
    folds = fold_patients(patients, classes, folds=5, seed=0)
    assert sorted(p for fold in folds for p in fold) == patients
    for fold in folds:  # stratified: two patients of each class per fold
        assert sorted(classes[patients.index(p)] for p in fold) == sorted(CLASSES * 2)
    regional = cross_validate(rows, rows, classes, feature_names("regional", True), 5, 0)
    today = cross_validate(rows, rows, classes, feature_names("global", True), 5, 0)
    assert len(regional["per_fold_accuracy"]) == 5
    assert regional["accuracy"] == 1.0 > today["accuracy"]
    assert np.mean(regional["per_fold_accuracy"]) == pytest.approx(regional["accuracy"])
    assert choose_feature_set({"global": [0.9, 0.92], "regional": [0.95, 0.93]}) == "regional"
    assert choose_feature_set({"global": [0.95, 0.93], "regional": [0.93, 0.95]}) == "global"  # a tie


def test_diagnosis_feature_table_carries_the_regional_columns(tmp_path):
    from CardiacMTLLib.analysis.diagnosis.features import REGIONAL_FEATURES, read_feature_table
    from CardiacMTLLib.training.diagnosis import write_feature_table

    patients, classes, rows = _feature_rows(1)
    rows[0]["GCS"] = None  # no strain for this one: an empty cell
    write_feature_table(tmp_path / "features.csv", patients, classes, rows)
    back = read_feature_table(tmp_path / "features.csv")
    assert back[0] == patients and back[1] == classes
    assert back[2][0]["GCS"] is None and back[2][1]["GCS"] == pytest.approx(10.0, abs=0.5)
    assert set(REGIONAL_FEATURES) <= set(back[2][1])
