"""The output-folder policy: no run ever deletes or replaces a file the project did not write, and a
failed or interrupted run leaves nothing partial behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from CardiacMTLApps.cli.mtl import main
from CardiacMTLLib.atomic import OUTPUT_MANIFEST, check_output_folder, staged_folder
from CardiacMTLLib.errors import CardiacOutputError


def _checksums(*folders: Path) -> dict:
    """Every file under ``folders`` with its sha256 (the state a refused run must leave unchanged)."""
    sums = {}
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                sums[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return sums


def _partials(folder: Path) -> list[str]:
    return [p.name for p in Path(folder).rglob("*") if ".partial" in p.name or ".old-" in p.name]


@pytest.fixture
def users_folder(tmp_path) -> Path:
    folder = tmp_path / "my_study_notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("the cardiologist's own notes\n")
    (folder / "indices.csv").write_text("their own table\n")
    return folder


def _refused(argv, capsys, *fragments) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_a_folder_holding_the_users_files_is_refused_and_left_untouched(small_cine, users_folder, capsys):
    before = _checksums(users_folder.parent, small_cine.parent)
    _refused(["analyze", str(small_cine), "--out", str(users_folder)], capsys, "did not write", "notes.txt")
    # not even --overwrite writes into somebody else's folder
    _refused(["analyze", str(small_cine), "--out", str(users_folder), "--overwrite"], capsys, "did not write")
    assert _checksums(users_folder.parent, small_cine.parent) == before
    assert not _partials(users_folder.parent)


def test_an_existing_file_as_out_is_refused(small_cine, tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("not a folder")
    _refused(["analyze", str(small_cine), "--out", str(target)], capsys, "not a folder")
    assert target.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_the_current_folder_is_refused(small_cine, users_folder, capsys, monkeypatch):
    monkeypatch.chdir(users_folder)
    before = _checksums(users_folder)
    _refused(["analyze", str(small_cine), "--out", "."], capsys, "the current folder")
    _refused(["analyze", str(small_cine), "--out", ".."], capsys, "above the current folder")
    assert _checksums(users_folder) == before


def test_the_input_folder_and_its_parents_are_refused(small_cine, capsys):
    before = _checksums(small_cine.parent)
    _refused(["analyze", str(small_cine.parent), "--out", str(small_cine.parent)], capsys, "the input")
    _refused(["analyze", str(small_cine), "--out", str(small_cine.parent)], capsys, "above the input")
    _refused(["segment", str(small_cine), "--out", str(small_cine.parent.parent)], capsys, "above the input")
    assert _checksums(small_cine.parent) == before


def test_single_file_outputs_refuse_folders_and_existing_files(tmp_path, capsys):
    import nibabel as nib

    ed = tmp_path / "ed.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.uint8), np.eye(4)), ed)
    _refused(["indices", "--ed", str(ed), "--es", str(ed), "--out", str(tmp_path)], capsys, "is a folder")
    existing = tmp_path / "mine.json"
    existing.write_text("{}")
    _refused(["indices", "--ed", str(ed), "--es", str(ed), "--out", str(existing)], capsys, "--overwrite")
    _refused(["indices", "--ed", str(ed), "--es", str(ed), "--out", str(ed), "--overwrite"], capsys, "input")
    assert existing.read_text() == "{}"


def test_an_out_that_cannot_be_created_is_one_line_before_any_work(small_cine, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    t0 = time.perf_counter()
    _refused(["analyze", str(small_cine), "--out", str(blocker / "sub")], capsys, "cannot create files")
    assert time.perf_counter() - t0 < 2.0  # refused before the model loads or the cine is read


def test_rerun_needs_overwrite_and_then_replaces_only_the_projects_files(small_cine, tmp_path, capsys):
    out = tmp_path / "p1"
    assert main(["analyze", str(small_cine), "--out", str(out), "--device", "cpu"]) == 0
    assert (out / OUTPUT_MANIFEST).is_file() and (out / "indices.json").is_file()
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())  # as the umask says, not 0700
    (out / "my_reading.txt").write_text("kept")
    (out / "segmentation" / "stale_from_an_old_run.nii.gz").write_bytes(b"")  # not the project's
    capsys.readouterr()
    _refused(["analyze", str(small_cine), "--out", str(out)], capsys, "--overwrite")
    first = (out / "indices.json").stat().st_mtime_ns
    assert main(["analyze", str(small_cine), "--out", str(out), "--device", "cpu", "--overwrite"]) == 0
    assert (out / "indices.json").stat().st_mtime_ns != first
    assert (out / "my_reading.txt").read_text() == "kept"
    assert (out / "segmentation" / "stale_from_an_old_run.nii.gz").exists()
    assert not _partials(tmp_path)


def test_slicer_export_writes_a_case_folder_inside_the_picked_one(small_cine, users_folder):
    from CardiacMTLLib.io.cine import read_cine
    from CardiacMTLLib.outputs import export_folder, write_outputs
    from CardiacMTLLib.pipeline import analyze

    result = analyze(read_cine(small_cine), device="cpu")
    before = _checksums(users_folder)
    target = export_folder(result, users_folder)
    assert target.parent == users_folder and target.name == "synthetic_cine_cardiacmtl"
    write_outputs(result, target, overwrite=True)
    write_outputs(result, target, overwrite=True)  # a second export replaces the first
    assert {k: v for k, v in _checksums(users_folder).items() if k in before} == before
    assert (target / "indices.csv").is_file()
    with pytest.raises(CardiacOutputError, match="did not write"):
        write_outputs(result, users_folder, overwrite=True)


def test_an_exception_or_interrupt_inside_the_staging_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    for exc in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with staged_folder(out) as staging:
                (staging / "half.csv").write_text("a,b")
                raise exc
        assert not out.exists() and not _partials(tmp_path)


def test_a_file_of_the_user_with_a_name_the_project_uses_is_never_replaced(tmp_path):
    out = tmp_path / "out"
    with staged_folder(out) as staging:
        (staging / "report.png").write_bytes(b"1")
    (out / "indices.csv").write_text("the user's")  # appears after the first run
    with pytest.raises(CardiacOutputError, match="indices.csv"):
        with staged_folder(out, overwrite=True) as staging:
            (staging / "report.png").write_bytes(b"2")
            (staging / "indices.csv").write_text("ours")
    assert (out / "indices.csv").read_text() == "the user's" and (out / "report.png").read_bytes() == b"1"
    assert not _partials(tmp_path)


def test_check_output_folder_accepts_new_and_empty_folders(tmp_path):
    assert check_output_folder(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper").resolve()
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty") == (tmp_path / "empty").resolve()


@pytest.mark.slow
def test_sigterm_stops_the_run_with_one_line_and_no_partial_output(small_cine, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "CardiacMTLApps.cli.mtl", "analyze", str(small_cine), "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    # inside the analysis: as soon as the segmentation's progress shows (an analysis of this small cine
    # takes about a second now, so a fixed wait could land after it, at the interpreter's exit)
    seen, started = "", time.monotonic()
    while "segmenting" not in seen and time.monotonic() - started < 60:
        char = process.stderr.read(1)
        if not char:
            break
        seen += char
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    err = seen + err
    if process.returncode == 0:
        pytest.skip("the analysis finished before the signal arrived (a very fast machine)")
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not out.exists() and not _partials(tmp_path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    "entry", ["../victim/keep.txt", "ABSOLUTE", "escape/keep.txt", "a/../../victim/keep.txt"]
)
def test_overwrite_never_removes_a_manifest_entry_outside_the_folder(tmp_path, entry):
    import json

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("the user's")
    out = tmp_path / "out"
    with staged_folder(out) as staging:
        (staging / "report.png").write_bytes(b"1")
    (out / "escape").symlink_to(victim, target_is_directory=True)  # a link made after the run
    manifest = json.loads((out / OUTPUT_MANIFEST).read_text())
    manifest["files"].append(str(victim / "keep.txt") if entry == "ABSOLUTE" else entry)
    (out / OUTPUT_MANIFEST).write_text(json.dumps(manifest))
    with staged_folder(out, overwrite=True) as staging:
        (staging / "report.png").write_bytes(b"2")
    assert (victim / "keep.txt").read_text() == "the user's"
    assert (out / "report.png").read_bytes() == b"2" and (out / "escape").is_symlink()
    assert json.loads((out / OUTPUT_MANIFEST).read_text())["files"] == ["report.png"]


def test_indices_overwrite_replaces_only_an_earlier_indices_file(tmp_path, capsys):
    from CardiacMTLLib.io.nifti import write_label_map
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    case = generate_synthetic_cine(seed=1, num_frames=4, shape=(48, 48, 4), spacing_mm=(2.5, 2.5, 10.0))
    ed, es = tmp_path / "ed.nii.gz", tmp_path / "es.nii.gz"
    for path, frame in ((ed, case.ed_index), (es, case.es_index)):
        write_label_map(case.labels[frame], case.cine.affine, path, case.cine.spacing_mm)
    info = tmp_path / "Info.cfg"
    info.write_text("ED: 1\nES: 12\n")
    foreign_json = tmp_path / "theirs.json"
    foreign_json.write_text('{"indices": {}, "note": "a user\'s"}')
    for target in (info, foreign_json):
        argv = ["indices", "--ed", str(ed), "--es", str(es), "--out", str(target), "--overwrite"]
        _refused(argv, capsys, target.name, "CardiacMTL did not write it")
    assert info.read_text() == "ED: 1\nES: 12\n" and "a user's" in foreign_json.read_text()
    ours = tmp_path / "indices.json"
    argv = ["indices", "--ed", str(ed), "--es", str(es), "--out", str(ours)]
    assert main(argv) == 0
    _refused(argv, capsys, "pass --overwrite")
    first = ours.stat().st_ino
    assert main([*argv, "--overwrite"]) == 0
    assert ours.stat().st_ino != first and not _partials(tmp_path)
