"""The patient's height and weight, wherever they come from (the user, an ACDC ``Info.cfg``, a cohort
manifest, DICOM): a number no person has is refused with one line naming where it came from (or, from a
DICOM header, left out with a QC warning), never turned into a body surface area."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest

from CardiacMTLApps.cohort import read_manifest
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.acdc import read_acdc_folder, read_acdc_info
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.io.patient import body_size_problem, checked_body_size
from CardiacMTLLib.synthetic.dicom import write_cine_dicom
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine


@pytest.mark.parametrize(
    ("quantity", "value", "fragment"),
    [
        ("height", 1.84, "1.84 looks like metres; give centimetres (184)"),
        ("height", 1700, "1700 cm is outside 40-250 cm"),
        ("height", 20, "20 cm is outside 40-250 cm"),
        ("weight", 7000, "7000 kg is outside 2-350 kg"),
        ("weight", 0.5, "0.5 kg is outside 2-350 kg"),
        ("weight", -70, "must be a positive number, got -70"),
        ("height", float("nan"), "must be a positive number, got nan"),
    ],
)
def test_a_height_or_weight_no_person_has_is_named(quantity, value, fragment):
    assert fragment in body_size_problem(quantity, value)
    with pytest.raises(CardiacInputError, match=f"^--{quantity} "):
        checked_body_size(quantity, value, f"--{quantity}")


@pytest.mark.parametrize(("height", "weight"), [(40, 2), (184, 95), (250, 350), (140, 35), (192, 123)])
def test_people_from_newborns_to_the_tallest_are_accepted(height, weight):
    assert body_size_problem("height", height) is None and body_size_problem("weight", weight) is None


def _acdc_folder(tmp_path, info: str, bom: bool = False):
    folder = tmp_path / "patient"
    folder.mkdir()
    image = np.random.default_rng(0).normal(100, 20, size=(32, 32, 4)).astype(np.float32)
    for frame in (1, 5, 9):
        nib.save(nib.Nifti1Image(image, np.eye(4)), folder / f"patient_frame{frame:02d}.nii.gz")
    (folder / "Info.cfg").write_bytes((b"\xef\xbb\xbf" if bom else b"") + info.encode())
    return folder


def test_an_info_cfg_height_in_metres_is_refused_naming_the_file(tmp_path):
    folder = _acdc_folder(tmp_path, "ED: 1\nES: 5\nHeight: 1.84\nWeight: 95\n")
    with pytest.raises(CardiacInputError, match=r"Info.cfg: Height 1.84 looks like metres"):
        read_acdc_folder(folder)
    # the user's own height replaces the file's, so the run goes on with it (--height 184)
    assert read_cine(folder, height_cm=184).height_cm == 184
    with pytest.raises(CardiacInputError, match="Info.cfg: Height"):  # a weight alone does not
        read_cine(folder, weight_kg=95)


def test_an_info_cfg_with_a_byte_order_mark_keeps_its_ed_and_es(tmp_path):
    cine = read_acdc_folder(_acdc_folder(tmp_path, "ED: 5\nES: 9\nHeight: 170\nWeight: 70\n", bom=True))
    assert (cine.end_diastole, cine.end_systole, cine.height_cm, cine.weight_kg) == (5, 9, 170.0, 70.0)


def test_a_manifest_height_in_metres_is_refused_naming_the_line(tmp_path):
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("study_id,path,height_cm,weight_kg\na,a.nii.gz,184,95\nb,b.nii.gz,1.84,95\n")
    with pytest.raises(CardiacInputError, match=r"cohort.csv line 3: height_cm 1.84 looks like metres"):
        read_manifest(manifest)
    manifest.write_text("study_id,path,height_cm,weight_kg\na,a.nii.gz,184,7000\n")
    with pytest.raises(CardiacInputError, match=r"line 2: weight_kg 7000 kg is outside"):
        read_manifest(manifest)


def test_a_dicom_patient_size_no_person_has_is_left_out_and_said(tmp_path):
    case = generate_synthetic_cine(seed=1, num_frames=2, shape=(64, 64, 3))
    # 170 in the metres field: a height of 170 m
    write_cine_dicom(dataclasses.replace(case.cine, height_cm=17000.0, weight_kg=70.0), tmp_path / "study")
    cine = read_cine(tmp_path / "study")
    assert cine.height_cm is None and cine.weight_kg == 70.0
    assert any("PatientSize 170 is not used" in w for w in cine.extra["warnings"]), cine.extra["warnings"]


@pytest.mark.data
def test_every_acdc_training_patient_has_a_height_and_weight_a_person_has(acdc_dir):
    infos = {p.parent.name: read_acdc_info(p) for p in sorted(acdc_dir.glob("patient*/Info.cfg"))}
    assert len(infos) == 100
    for name, info in infos.items():
        assert body_size_problem("height", float(info["Height"])) is None, (name, info)
        assert body_size_problem("weight", float(info["Weight"])) is None, (name, info)
