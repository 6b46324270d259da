"""The bad-input battery: every input a user can get wrong, given to ``cardiac-mtl`` as a user would.

Each case asserts the exit status, that the message names the problem (one line, no traceback), that no
file that was there before changed (the input, ``--out``, its parent and the current folder, by sha256)
and that nothing partial is left behind. Inputs that can be measured but cannot support a diagnosis run
through and must come out without a diagnosis class and with a QC finding on the console.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from CardiacMTLApps.cli.mtl import main
from CardiacMTLLib.atomic import staged_folder
from CardiacMTLLib.synthetic.dicom import write_cine_dicom
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case

ACDC = Path(__file__).resolve().parents[3] / "shared" / "data" / "acdc"


@dataclass
class World:
    """What a case may use: a small synthetic study in several forms, and a scratch folder."""

    root: Path
    nifti: Path  # 4D synthetic cine
    labels: Path  # its ground-truth label map (4D)
    dicom: Path  # the same cine as a DICOM study (one series per slice)
    ed: int
    es: int


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    case = generate_synthetic_cine(seed=5, num_frames=6, shape=(112, 112, 6), spacing_mm=(2.0, 2.0, 10.0))
    write_synthetic_case(case, root / "synthetic")
    write_cine_dicom(case.cine, root / "dicom")
    return World(
        root,
        root / "synthetic" / "synthetic_cine.nii.gz",
        root / "synthetic" / "synthetic_cine_gt.nii.gz",
        root / "dicom",
        case.ed_index,
        case.es_index,
    )


def _nifti(path: Path, data, spacing=(1.5, 1.5, 8.0, 30.0)) -> Path:
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.diag([*spacing[:3], 1.0]))
    image.header.set_zooms(spacing[: np.asarray(data).ndim])
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)
    return path


def _heart(shape=(64, 64, 8, 4)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(100, 20, size=shape).astype(np.float32)


def _copy_dicom(world: World, tmp: Path) -> Path:
    target = tmp / "study"
    shutil.copytree(world.dicom, target)
    return target


# --- the cases: each returns (argv, inputs, out) for a scratch folder -------------------------------


def c_missing(w, t):
    return ["analyze", str(t / "nope.nii.gz"), "--out", str(t / "out")], [], t / "out"


def c_text_as_nifti(w, t):
    p = t / "notes.nii.gz"
    p.write_text("these are not voxels")
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_gzip_crc(w, t):
    raw = bytearray(w.nifti.read_bytes())
    raw[-8] ^= 0xFF  # the stored CRC-32 of the stream (the last 8 bytes are CRC-32 and length)
    p = t / "crc.nii.gz"
    p.write_bytes(bytes(raw))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_gzip_scrambled(w, t):
    raw = bytearray(w.nifti.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(64)
    p = t / "scrambled.nii.gz"
    p.write_bytes(bytes(raw))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_gzip_truncated(w, t):
    raw = w.nifti.read_bytes()
    p = t / "truncated.nii.gz"
    p.write_bytes(raw[: len(raw) * 2 // 3])
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_nan(w, t):
    data = _heart()
    data[3, 3, 1, 1] = np.nan
    p = _nifti(t / "nan.nii.gz", data)
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_empty(w, t):
    p = _nifti(t / "empty.nii.gz", np.zeros((0, 64, 8)))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_zero_spacing(w, t):
    image = nib.Nifti1Image(_heart(), None)
    image.header["pixdim"][1:4] = 0
    p = t / "nospacing.nii.gz"
    image.to_filename(str(p))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_huge_spacing(w, t):
    p = _nifti(t / "huge.nii.gz", _heart(), spacing=(100.0, 100.0, 8.0, 30.0))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_tiny_spacing(w, t):
    p = _nifti(t / "tiny.nii.gz", _heart(), spacing=(0.01, 0.01, 8.0, 30.0))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_one_slice(w, t):
    p = _nifti(t / "oneslice.nii.gz", _heart((64, 64, 1, 6)))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_two_slices(w, t):
    p = _nifti(t / "twoslices.nii.gz", _heart((64, 64, 2, 6)))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_all_zero(w, t):
    p = _nifti(t / "zero.nii.gz", np.zeros((64, 64, 8, 4)))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_constant(w, t):
    p = _nifti(t / "constant.nii.gz", np.full((64, 64, 8, 4), 7.0))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_label_map_as_image(w, t):
    return ["analyze", str(w.labels), "--out", str(t / "out")], [w.labels], t / "out"


def c_ed_equals_es(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--ed", "2", "--es", "2"], [w.nifti], t / "out"


def c_es_missing_frame(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--es", "40"], [w.nifti], t / "out"


def c_ed_missing_frame(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--ed", "-3"], [w.nifti], t / "out"


def c_single_dicom_file(w, t):
    study = _copy_dicom(w, t)
    one = sorted(study.rglob("*.dcm"))[0]
    return ["analyze", str(one), "--out", str(t / "out")], [study], t / "out"


def c_folder_with_one_dicom(w, t):
    folder = t / "one"
    folder.mkdir()
    shutil.copy(sorted(w.dicom.rglob("*.dcm"))[0], folder / "IM0001.dcm")
    return ["analyze", str(folder), "--out", str(t / "out")], [folder], t / "out"


def c_dicom_corrupt_header(w, t):
    study = _copy_dicom(w, t)
    victim = sorted(study.rglob("*.dcm"))[3]
    raw = bytearray(victim.read_bytes())
    raw[132:400] = bytes(range(256)) + bytes(12)  # the header after the preamble
    victim.write_bytes(bytes(raw))
    return ["analyze", str(study), "--out", str(t / "out")], [study], t / "out"


def c_dicom_without_position(w, t):
    import pydicom

    study = _copy_dicom(w, t)
    victim = sorted(study.rglob("*.dcm"))[5]
    ds = pydicom.dcmread(victim)
    del ds.ImagePositionPatient
    ds.save_as(victim, enforce_file_format=True)
    return ["analyze", str(study), "--out", str(t / "out")], [study], t / "out"


def c_empty_folder(w, t):
    (t / "empty").mkdir()
    return ["analyze", str(t / "empty"), "--out", str(t / "out")], [t / "empty"], t / "out"


def c_folder_of_text(w, t):
    folder = t / "texts"
    folder.mkdir()
    for k in range(3):
        (folder / f"note{k}.txt").write_text("not an image")
    return ["analyze", str(folder), "--out", str(t / "out")], [folder], t / "out"


def c_info_without_images(w, t):
    folder = t / "patient"
    folder.mkdir()
    (folder / "Info.cfg").write_text("ED: 1\nES: 5\nHeight: 170\nWeight: 70\n")
    return ["analyze", str(folder), "--out", str(t / "out")], [folder], t / "out"


def _acdc_with_info(t, info: str):
    """An ACDC-like patient folder (frames 1 and 5) whose Info.cfg says ``info``; analyse it."""
    folder = t / "patient"
    _nifti(folder / "patient_frame01.nii.gz", _heart((64, 64, 8)))
    _nifti(folder / "patient_frame05.nii.gz", _heart((64, 64, 8)))
    (folder / "Info.cfg").write_text(info)
    return ["analyze", str(folder), "--out", str(t / "out")], [folder], t / "out"


def c_info_bad_height(w, t):
    return _acdc_with_info(t, "ED: 1\nES: 5\nHeight: tall\nWeight: 70\n")


def c_negative_height(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--height", "-5"], [w.nifti], t / "out"


def c_zero_weight(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--weight", "0"], [w.nifti], t / "out"


def c_height_in_metres(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--height", "1.84"], [w.nifti], t / "out"


def c_height_in_millimetres(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--height", "1700"], [w.nifti], t / "out"


def c_weight_in_grams(w, t):
    return ["analyze", str(w.nifti), "--out", str(t / "out"), "--weight", "7000"], [w.nifti], t / "out"


def c_info_height_in_metres(w, t):
    return _acdc_with_info(t, "ED: 1\nES: 5\nHeight: 1.84\nWeight: 70\n")


def c_indices_height_in_metres(w, t):
    ed = _nifti(t / "ed.nii.gz", np.zeros((16, 16, 4)))
    argv = ["indices", "--ed", str(ed), "--es", str(ed), "--height", "1.84", "--out", str(t / "i.json")]
    return argv, [ed], t / "i.json"


def c_5d(w, t):
    p = _nifti(t / "five.nii.gz", np.ones((16, 16, 4, 3, 2)), spacing=(1.5, 1.5, 8.0, 30.0, 1.0))
    return ["analyze", str(p), "--out", str(t / "out")], [p], t / "out"


def c_out_is_input_folder(w, t):
    study = _copy_dicom(w, t)
    return ["analyze", str(study), "--out", str(study)], [study], study


def c_out_is_parent_of_input(w, t):
    p = t / "in" / "cine.nii.gz"
    p.parent.mkdir()
    shutil.copy(w.nifti, p)
    return ["analyze", str(p), "--out", str(t / "in")], [p], t / "in"


def c_out_is_cwd(w, t):
    return ["analyze", str(w.nifti), "--out", "."], [w.nifti], Path(".")


def c_out_users_folder(w, t):
    mine = t / "mine"
    mine.mkdir()
    (mine / "report.png").write_bytes(b"my own figure")
    return ["analyze", str(w.nifti), "--out", str(mine), "--overwrite"], [w.nifti], mine


def c_out_is_file(w, t):
    (t / "results").write_text("a file")
    return ["analyze", str(w.nifti), "--out", str(t / "results")], [w.nifti], t / "results"


def c_out_under_file(w, t):
    (t / "afile").write_text("x")
    return ["analyze", str(w.nifti), "--out", str(t / "afile" / "sub")], [w.nifti], t / "afile" / "sub"


def c_segment_out_file(w, t):
    (t / "seg").write_text("a file")
    vol = _nifti(t / "vol.nii.gz", _heart((64, 64, 8)))
    return ["segment", str(vol), "--out", str(t / "seg")], [vol], t / "seg"


def c_segment_same_names(w, t):
    a = _nifti(t / "a" / "x.nii.gz", _heart((64, 64, 8)))
    b = _nifti(t / "b" / "x.nii.gz", _heart((64, 64, 8)))
    return ["segment", str(a), str(b), "--out", str(t / "seg")], [a, b], t / "seg"


def c_dicom_out_is_out(w, t):
    # an earlier run's results in --out: with --overwrite the DICOM files would replace them
    with staged_folder(t / "out") as staging:
        (staging / "indices.json").write_text("{}")
    argv = ["analyze", str(w.dicom), "--out", str(t / "out"), "--dicom-out", str(t / "out"), "--overwrite"]
    return argv, [w.dicom], t / "out"


def c_dicom_out_holds_out(w, t):
    argv = ["analyze", str(w.dicom), "--out", str(t / "d" / "results"), "--dicom-out", str(t / "d")]
    return argv, [w.dicom], t / "d"


def c_segment_4d(w, t):
    return ["segment", str(w.nifti), "--out", str(t / "seg")], [w.nifti], t / "seg"


def c_indices_out_folder(w, t):
    ed = _nifti(t / "ed.nii.gz", np.zeros((16, 16, 4)))
    return ["indices", "--ed", str(ed), "--es", str(ed), "--out", str(t)], [ed], t


def c_indices_foreign_values(w, t):
    ed = _nifti(t / "ed.nii.gz", np.full((16, 16, 4), 7.0))
    return ["indices", "--ed", str(ed), "--es", str(ed), "--out", str(t / "i.json")], [ed], t / "i.json"


def c_indices_4d(w, t):
    ed = _nifti(t / "ed.nii.gz", np.zeros((16, 16, 4, 3)))
    return ["indices", "--ed", str(ed), "--es", str(ed), "--out", str(t / "i.json")], [ed], t / "i.json"


def c_indices_spacings(w, t):
    ed = _nifti(t / "ed.nii.gz", np.zeros((16, 16, 4)), spacing=(1.0, 1.0, 8.0))
    es = _nifti(t / "es.nii.gz", np.zeros((16, 16, 4)), spacing=(2.0, 2.0, 8.0))
    return ["indices", "--ed", str(ed), "--es", str(es), "--out", str(t / "i.json")], [ed, es], t / "i.json"


def c_indices_existing_out(w, t):
    ed = _nifti(t / "ed.nii.gz", np.zeros((16, 16, 4)))
    (t / "i.json").write_text("{}")
    return ["indices", "--ed", str(ed), "--es", str(ed), "--out", str(t / "i.json")], [ed], t / "i.json"


def c_landmarks_missing_model(w, t):
    return (
        ["landmarks", str(w.nifti), "--view", "4ch", "--out", str(t / "lm"), "--model", str(t / "nomodel")],
        [w.nifti],
        t / "lm",
    )


def c_bad_diagnosis_model(w, t):
    return (
        ["analyze", str(w.nifti), "--out", str(t / "out"), "--diagnosis-model", str(t / "nomodel")],
        [w.nifti],
        t / "out",
    )


def c_bad_landmarks_file(w, t):
    bad = t / "landmarks.json"
    bad.write_text("{not json")
    return (
        ["analyze", str(w.nifti), "--out", str(t / "out"), "--landmarks", str(bad)],
        [w.nifti, bad],
        t / "out",
    )


REFUSED: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "missing input": (c_missing, ("nope.nii.gz", "no such file")),
    "text file named .nii.gz": (c_text_as_nifti, ("notes.nii.gz", "not a readable NIfTI")),
    "gzip CRC fails": (c_gzip_crc, ("crc.nii.gz", "corrupt")),
    "gzip bytes scrambled mid-stream": (c_gzip_scrambled, ("scrambled.nii.gz",)),
    "gzip truncated": (c_gzip_truncated, ("truncated.nii.gz",)),
    "NaN voxel": (c_nan, ("nan.nii.gz", "NaN")),
    "empty image": (c_empty, ("empty.nii.gz", "empty")),
    "no voxel spacing": (c_zero_spacing, ("nospacing.nii.gz", "spacing")),
    "100 mm pixels": (c_huge_spacing, ("huge.nii.gz", "100 x 100 mm")),
    "0.01 mm pixels": (c_tiny_spacing, ("tiny.nii.gz", "pixel spacing")),
    "one-slice cine": (c_one_slice, ("oneslice.nii.gz", "1 slice")),
    "two-slice cine": (c_two_slices, ("twoslices.nii.gz", "2 slice")),
    "all-zero image": (c_all_zero, ("zero.nii.gz", "constant")),
    "constant image": (c_constant, ("constant.nii.gz", "constant")),
    "label map given as the image": (c_label_map_as_image, ("synthetic_cine_gt.nii.gz", "label map")),
    "--ed equal to --es": (c_ed_equals_es, ("both frame 2",)),
    "--es not in the cine": (c_es_missing_frame, ("frame 40",)),
    "--ed not in the cine": (c_ed_missing_frame, ("frame -3",)),
    "a single .dcm file": (c_single_dicom_file, (".dcm", "give the folder")),
    "a folder with one DICOM file": (c_folder_with_one_dicom, ("1 slice",)),
    "a DICOM file with a corrupt header": (c_dicom_corrupt_header, ("IM0003.dcm", "could not be used")),
    "a DICOM file without ImagePositionPatient": (
        c_dicom_without_position,
        ("IM0005.dcm", "ImagePositionPatient"),
    ),
    "an empty folder": (c_empty_folder, ("empty", "0 file")),
    "a folder of text files": (c_folder_of_text, ("texts", "no readable DICOM")),
    "Info.cfg without images": (c_info_without_images, ("patient", "frame")),
    "Info.cfg with a word for a number": (c_info_bad_height, ("Info.cfg", "Height")),
    "negative --height": (c_negative_height, ("height", "-5")),
    "zero --weight": (c_zero_weight, ("weight",)),
    "--height in metres": (c_height_in_metres, ("--height 1.84", "looks like metres; give centimetres")),
    "--height of 1700 cm": (c_height_in_millimetres, ("--height 1700", "40-250 cm")),
    "--weight of 7000 kg": (c_weight_in_grams, ("--weight 7000", "2-350 kg")),
    "Info.cfg height in metres": (c_info_height_in_metres, ("Info.cfg: Height 1.84", "looks like metres")),
    "indices --height in metres": (c_indices_height_in_metres, ("--height 1.84", "looks like metres")),
    "5D image": (c_5d, ("five.nii.gz", "5D")),
    "--out is the input folder": (c_out_is_input_folder, ("the input",)),
    "--out is the folder above the input": (c_out_is_parent_of_input, ("above the input",)),
    "--out is the current folder": (c_out_is_cwd, ("the current folder",)),
    "--out holds the user's files (even with --overwrite)": (
        c_out_users_folder,
        ("did not write", "report.png"),
    ),
    "--out is a file": (c_out_is_file, ("not a folder",)),
    "--out under a file": (c_out_under_file, ("cannot create files",)),
    "segment --out is a file": (c_segment_out_file, ("not a folder",)),
    "segment given a 4D cine": (c_segment_4d, ("synthetic_cine.nii.gz", "3D")),
    "segment given two images of the same name": (
        c_segment_same_names,
        ("a/x.nii.gz", "b/x.nii.gz", "x_seg"),
    ),
    "--dicom-out is --out (with --overwrite)": (c_dicom_out_is_out, ("--dicom-out", "the --out folder")),
    "--dicom-out holds --out": (c_dicom_out_holds_out, ("--dicom-out", "a folder above --out")),
    "indices --out is a folder": (c_indices_out_folder, ("is a folder",)),
    "indices of foreign label values": (c_indices_foreign_values, ("ed.nii.gz", "7")),
    "indices of a 4D label map": (c_indices_4d, ("ed.nii.gz", "3D")),
    "indices of maps with different spacings": (c_indices_spacings, ("different spacings",)),
    "indices --out exists": (c_indices_existing_out, ("--overwrite",)),
    "landmarks with a missing model folder": (c_landmarks_missing_model, ("nomodel",)),
    "a missing diagnosis model": (c_bad_diagnosis_model, ("nomodel",)),
    "a corrupt landmarks file": (c_bad_landmarks_file, ("landmarks.json",)),
}


def _state(paths) -> dict:
    sums = {}
    for base in paths:
        base = Path(base)
        files = [base] if base.is_file() else sorted(base.rglob("*")) if base.is_dir() else []
        for p in files:
            if p.is_file():
                sums[str(p.resolve())] = hashlib.sha256(p.read_bytes()).hexdigest()
    return sums


def _partials(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".partial" in p.name or ".old-" in p.name]


@pytest.mark.parametrize("case", REFUSED)
def test_bad_input_is_refused_with_one_line_and_nothing_changes(case, world, tmp_path, capsys, monkeypatch):
    build, fragments = REFUSED[case]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "keep.txt").write_text("the user's current folder")
    monkeypatch.chdir(cwd)
    argv, inputs, out = build(world, scratch)
    out = Path(out).resolve()
    watched = [scratch, cwd, out, out.parent, *inputs]
    before = _state(watched)
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, (case, status, captured.err)
    err = captured.err.strip()
    assert "Traceback" not in captured.err and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (case, err)
    assert _state(watched) == before, f"{case}: a file that was there before changed"
    assert not _partials(tmp_path), _partials(tmp_path)


def test_the_100_mm_nifti_under_a_memory_cap_fails_clearly_within_5_s(world, tmp_path):
    import resource
    import subprocess
    import sys
    import time

    p = _nifti(tmp_path / "huge.nii.gz", _heart(), spacing=(100.0, 100.0, 8.0, 30.0))
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (8_000_000 * 1024, 8_000_000 * 1024)); "
        "from CardiacMTLApps.cli.mtl import main; sys.exit(main(sys.argv[1:]))"
    )
    assert resource.RLIMIT_AS  # the cap is the same as `ulimit -v 8000000`
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", code, "analyze", str(p), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.perf_counter() - t0
    assert run.returncode == 2 and "pixel spacing" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert seconds < 5.0, f"{seconds:.1f} s"


# --- measured, but no diagnosis: each exits 0 with the reason on the console ---------------------------


def _analyze(argv, capsys) -> tuple[str, dict]:
    assert main([*argv, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    folder = Path(argv[argv.index("--out") + 1])
    return out, json.loads((folder / "indices.json").read_text())


@pytest.mark.slow
def test_ed_and_es_swapped_on_the_command_line_withhold_the_diagnosis(world, tmp_path, capsys):
    frames = list(range(6))
    argv = ["analyze", str(world.nifti), "--out", str(tmp_path / "out")]
    argv += ["--ed", str(frames[world.es]), "--es", str(frames[world.ed])]
    out, document = _analyze(argv, capsys)
    assert document["diagnosis"]["class"] is None and "withheld" in document["diagnosis"]["error"]
    assert "not above the end-systolic" in out and "QC:" in out
    assert document["indices"]["LVEF (%)"] < 0  # measured as asked, and flagged
    assert "implausible" in document["provenance"]["plausibility"]


@pytest.mark.slow
def test_a_motionless_cine_gets_its_volumes_but_no_diagnosis(world, tmp_path, capsys):
    frame = nib.load(world.nifti).get_fdata(dtype=np.float32)[..., world.ed]
    still = np.repeat(frame[..., None], 6, axis=3)  # one frame, six times: no systole to measure
    p = _nifti(tmp_path / "still.nii.gz", still, spacing=(2.0, 2.0, 10.0, 30.0))
    out, document = _analyze(["analyze", str(p), "--out", str(tmp_path / "out")], capsys)
    assert document["diagnosis"]["class"] is None and "withheld" in document["diagnosis"]["error"]
    assert "ED and ES images are the same" in document["diagnosis"]["error"]
    assert "no motion to measure" in out and "implausible result" in out
    assert document["indices"]["LVEDV (mL)"] > 0  # measured, and flagged


@pytest.mark.slow
def test_noise_that_is_not_a_heart_gets_no_diagnosis(world, tmp_path, capsys):
    rng = np.random.default_rng(3)
    p = _nifti(
        tmp_path / "noise.nii.gz", rng.gamma(2.0, 50.0, size=(96, 96, 8, 4)), spacing=(1.5, 1.5, 8.0, 30.0)
    )
    out, document = _analyze(["analyze", str(p), "--out", str(tmp_path / "out")], capsys)
    assert document["diagnosis"]["class"] is None, document["diagnosis"]
    assert "QC:" in out and "implausible result" in out


@pytest.mark.slow
@pytest.mark.data
def test_info_cfg_with_ed_equal_to_es_is_measured_on_the_curve_but_not_diagnosed(tmp_path, capsys):
    if not (ACDC / "patient001" / "Info.cfg").is_file():
        pytest.skip(f"ACDC data not found at {ACDC}")
    folder = tmp_path / "patient001"
    folder.mkdir()
    for image in ACDC.joinpath("patient001").glob("patient001_frame*.nii.gz"):
        if "_gt" not in image.name:
            (folder / image.name).symlink_to(image)
    (folder / "Info.cfg").write_text("ED: 1\nES: 1\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n")
    out, document = _analyze(["analyze", str(folder), "--out", str(tmp_path / "out")], capsys)
    assert document["diagnosis"]["class"] is None and "both ED and ES" in document["diagnosis"]["error"]
    assert document["indices"]["LVEF (%)"] > 20  # the curve found real ED and ES frames
    assert "both ED and ES" in out


@pytest.mark.slow
def test_repeated_dicom_files_are_read_once_with_a_qc_finding(world, tmp_path, capsys):
    study = _copy_dicom(world, tmp_path)
    for image in sorted(study.rglob("*.dcm")):
        shutil.copy(image, image.with_name(image.stem + "_copy.dcm"))
    out, document = _analyze(["analyze", str(study), "--out", str(tmp_path / "out")], capsys)
    assert len(document["volume_curve_ml"]["frames"]) == 6  # not 12
    assert "repeat an image" in out and any("repeat an image" in f["problem"] for f in document["qc"])


# --- landmarks: only long-axis cines of the view named, every plane of a several-plane export ---------

BIVME = ACDC.parent / "bivme_patient1" / "dicom"


def _bivme(series: str) -> Path:
    if not (BIVME / series).is_dir():
        pytest.skip(f"biv-me DICOM study not found at {BIVME}")
    return BIVME / series


@pytest.mark.data
@pytest.mark.parametrize(
    "series, view, fragment",
    [
        ("Se1", "4ch", "the LV cavity is round"),  # a short-axis series
        ("Se8", "4ch", "give --view 2ch"),  # a 2-chamber series given as 4-chamber
        ("Se10", "2ch", "not a 2- or 4-chamber view"),  # the RV outflow tract
    ],
)
def test_landmarks_refuse_what_is_not_a_long_axis_cine_of_the_view(series, view, fragment, tmp_path, capsys):
    path = _bivme(series)
    assert main(["landmarks", str(path), "--view", view, "--out", str(tmp_path / "lm")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "lm").exists() and not _partials(tmp_path)


@pytest.mark.data
def test_landmarks_refuse_a_short_axis_volume_read_as_frames(tmp_path, capsys):
    volume = ACDC / "patient001" / "patient001_frame01.nii.gz"
    if not volume.is_file():
        pytest.skip(f"ACDC data not found at {ACDC}")
    assert main(["landmarks", str(volume), "--view", "4ch", "--out", str(tmp_path / "lm")]) == 2
    assert "short-axis" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.slow
def test_landmarks_of_a_several_plane_export_cover_every_plane_or_the_one_chosen(tmp_path, capsys):
    import pydicom

    source = _bivme("Se6")
    export = tmp_path / "export"
    export.mkdir()
    normal = None
    for plane, shift_mm in enumerate((0.0, 8.0)):  # the 4-chamber plane and a parallel one 8 mm away
        uid = pydicom.uid.generate_uid()
        for image in sorted(source.iterdir()):
            ds = pydicom.dcmread(image)
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            normal = np.cross(iop[:3], iop[3:])
            ds.ImagePositionPatient = [
                float(v) for v in np.array(ds.ImagePositionPatient, float) + shift_mm * normal
            ]
            ds.SeriesInstanceUID = uid
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.save_as(export / f"p{plane}_{image.name}", enforce_file_format=True)
    assert main(["landmarks", str(export), "--view", "4ch", "--out", str(tmp_path / "all")]) == 0
    points = json.loads((tmp_path / "all" / "landmarks.json").read_text())
    points = points["landmarks"] if isinstance(points, dict) else points
    assert sorted({p["slice"] for p in points}) == [0, 1] and len(points) == 2 * 2 * 25
    assert (tmp_path / "all" / "landmarks_plane1.png").is_file()
    assert (
        main(["landmarks", str(export), "--view", "4ch", "--out", str(tmp_path / "one"), "--plane", "1"]) == 0
    )
    one = json.loads((tmp_path / "one" / "landmarks.json").read_text())
    one = one["landmarks"] if isinstance(one, dict) else one
    assert {p["slice"] for p in one} == {1} and len(one) == 2 * 25
    # the same hinge, found in both runs, lies in the same place of the patient
    first = {(p["label"], p["frame"]): p["ras"] for p in points if p["slice"] == 1}
    assert all(np.allclose(first[(p["label"], p["frame"])], p["ras"]) for p in one)


@pytest.mark.slow
def test_dicom_out_inside_out_keeps_both_and_a_rerun_replaces_both(world, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "analyze",
        str(world.dicom),
        "--out",
        str(out),
        "--dicom-out",
        str(out / "dicom"),
        "--device",
        "cpu",
    ]
    for extra in ([], ["--overwrite"]):
        assert main([*argv, *extra]) == 0, capsys.readouterr().err
        assert (out / "indices.json").is_file() and (out / "segmentation").is_dir()
        assert sorted(p.name for p in (out / "dicom").glob("*.dcm")) == ["seg_ED.dcm", "seg_ES.dcm", "sr.dcm"]
    assert not _partials(tmp_path)
