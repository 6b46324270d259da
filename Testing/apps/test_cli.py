"""End-to-end behaviour of ``cardiac-mtl``: analyze/segment/indices/demo, outputs, and bad inputs."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from CardiacMTLApps.cli import atlas, mtl, train
from CardiacMTLApps.cli.mtl import _progress_bar, main
from CardiacMTLLib.analysis.indices import compute_indices
from CardiacMTLLib.evaluation.metrics import dice_per_class
from CardiacMTLLib.io.nifti import read_nifti_volume

INDEX_KEYS = [
    "ED frame",
    "ES frame",
    "LVEDV (mL)",
    "LVESV (mL)",
    "LVSV (mL)",
    "LVEF (%)",
    "LVM (g)",
    "RVEDV (mL)",
    "RVESV (mL)",
    "RVSV (mL)",
    "RVEF (%)",
    "BSA (m2)",
    "LVEDVi (mL/m2)",
    "LVMi (g/m2)",
    "Max wall thickness ED (mm)",
    "Mean wall thickness ED (mm)",
]


def _nothing_partial_left(parent):
    return not [p for p in parent.iterdir() if ".partial" in p.name]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    assert main(["demo", "--out", str(out), "--device", "cpu"]) == 0
    return out


def test_demo_writes_the_analysis_of_the_synthetic_cine(demo_run):
    analysis = demo_run / "analysis"
    document = json.loads((analysis / "indices.json").read_text())
    assert document["schema_version"] == 2  # version 1 had no such field
    for key in INDEX_KEYS:
        assert key in document["indices"], key
    assert document["provenance"]["device"].startswith("cpu")
    assert (analysis / "report.png").stat().st_size > 10_000
    seg = nib.load(analysis / "segmentation" / "synthetic_cine_seg.nii.gz")
    image = nib.load(demo_run / "input" / "synthetic_cine.nii.gz")
    assert seg.shape == image.shape  # one 4D label map on the input's grid
    np.testing.assert_allclose(seg.affine, image.affine)
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 3}
    header = (analysis / "indices.csv").read_text().splitlines()[0]
    assert "LVEF (%)" in header and "provenance: model_id" in header
    diagnosis = document["diagnosis"]
    assert diagnosis["class"] in ("NOR", "MINF", "DCM", "HCM", "ARV"), diagnosis
    assert abs(sum(diagnosis["probabilities"].values()) - 1.0) < 1e-3
    assert "Diagnosis" in header and "P(DCM)" in header


def test_demo_writes_strain_that_contracts_and_thickens(demo_run):
    analysis = demo_run / "analysis"
    strain = json.loads((analysis / "strain.json").read_text())
    assert -35 < strain["es_circumferential_pct"] < -5  # the synthetic heart shortens ...
    assert 5 < strain["es_radial_pct"] < 80  # ... and its wall thickens
    assert len(strain["segments"]) == 16 and strain["rule"]
    rows = (analysis / "strain.csv").read_text().splitlines()
    assert rows[0] == "region,frame,time_ms,frames_from_ed,radial_pct,circumferential_pct"
    assert len(rows) == 1 + 17 * len(strain["frame_numbers"])  # global + 16 segments, every frame


def test_demo_finds_end_diastole_and_systole_and_the_ejection_fraction(demo_run):
    summary = json.loads((demo_run / "demo_summary.json").read_text())
    true, measured = summary["true"], summary["measured"]
    assert measured["ED index"] == true["ED index"]
    assert abs(measured["ES index"] - true["ES index"]) <= 1
    assert abs(measured["LVEF (%)"] - true["LVEF (%)"]) < 8.0
    assert summary["dice_vs_truth_all_frames"]["LV"] > 0.85


@pytest.mark.data
def test_analyze_acdc_folder_writes_one_label_map_per_frame_file(acdc_dir, tmp_path):
    out = tmp_path / "p061"
    assert main(["analyze", str(acdc_dir / "patient061"), "--out", str(out), "--device", "cpu"]) == 0
    names = sorted(p.name for p in (out / "segmentation").iterdir())
    assert names == ["patient061_frame01_seg.nii.gz", "patient061_frame10_seg.nii.gz"]
    indices = json.loads((out / "indices.json").read_text())["indices"]
    assert indices["ED frame"] == 1 and indices["ES frame"] == 10  # from Info.cfg
    assert indices["BSA (m2)"] is not None  # height and weight from Info.cfg
    diagnosis = json.loads((out / "indices.json").read_text())["diagnosis"]
    assert (
        diagnosis["class"] in ("NOR", "MINF", "DCM", "HCM", "ARV")
        and diagnosis["features_used"] == "all features"
    )
    assert abs(sum(diagnosis["probabilities"].values()) - 1.0) < 1e-3
    assert all(t["status"] in ("met", "not met", "not judged") for t in diagnosis["criteria"])
    for frame in ("01", "10"):
        pred, _, affine = read_nifti_volume(out / "segmentation" / f"patient061_frame{frame}_seg.nii.gz")
        truth, _, truth_affine = read_nifti_volume(
            acdc_dir / "patient061" / f"patient061_frame{frame}_gt.nii.gz"
        )
        np.testing.assert_allclose(affine, truth_affine)
        assert dice_per_class(pred, truth, (3,))[3] > 0.85


@pytest.mark.data
def test_segmentation_quality_on_validation_patients(acdc_dir, tmp_path):
    """A few held-out patients (one per group) through ``cardiac-mtl segment`` and the native grid."""
    from CardiacMTLLib.models.registry import load_model

    validation = load_model(device="cpu").manifest["training"]["validation_patients"]
    chosen = [p for p in validation if int(p[-3:]) in range(1, 101)][::4][:5]
    images = [acdc_dir / p / f"{p}_frame01.nii.gz" for p in chosen]
    assert main(["segment", *map(str, images), "--out", str(tmp_path), "--device", "cpu"]) == 0
    scores = {1: [], 2: [], 3: []}
    for image in images:
        pred, _, _ = read_nifti_volume(tmp_path / image.name.replace(".nii.gz", "_seg.nii.gz"))
        truth, _, _ = read_nifti_volume(image.with_name(image.name.replace(".nii.gz", "_gt.nii.gz")))
        for k, v in dice_per_class(pred, truth).items():
            scores[k].append(v)
    assert np.mean(scores[3]) > 0.90, scores
    assert np.mean(scores[1]) > 0.80, scores
    assert np.mean(scores[2]) > 0.80, scores


@pytest.mark.data
def test_indices_command_volumes_equal_voxel_count_times_voxel_volume(acdc_dir, tmp_path):
    ed = acdc_dir / "patient001" / "patient001_frame01_gt.nii.gz"
    es = acdc_dir / "patient001" / "patient001_frame12_gt.nii.gz"
    out = tmp_path / "indices.json"
    assert (
        main(
            [
                "indices",
                "--ed",
                str(ed),
                "--es",
                str(es),
                "--height",
                "184",
                "--weight",
                "95",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    indices = json.loads(out.read_text())["indices"]
    labels, spacing, _ = read_nifti_volume(ed)
    voxel_ml = float(np.prod(spacing)) / 1000
    assert indices["LVEDV (mL)"] == pytest.approx((labels == 3).sum() * voxel_ml, rel=0.005)
    assert indices["RVEDV (mL)"] == pytest.approx((labels == 1).sum() * voxel_ml, rel=0.005)
    assert indices["LVM (g)"] == pytest.approx((labels == 2).sum() * voxel_ml * 1.05, rel=0.005)
    assert indices == json.loads(
        json.dumps(compute_indices(labels, read_nifti_volume(es)[0], spacing, 184, 95))
    )


def _write_nifti(path, array, zooms=(1.5, 1.5, 8.0)):
    image = nib.Nifti1Image(array, np.diag([1.5, 1.5, 8.0, 1.0]))
    image.header.set_zooms(zooms + (1.0,) * (array.ndim - 3))
    nib.save(image, str(path))
    return path


def _run_expecting_error(argv, capsys, *fragments):
    assert main(argv) == 2
    message = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_input_is_named_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    _run_expecting_error(["analyze", str(tmp_path / "nope.nii.gz"), "--out", str(out)], capsys, "nope.nii.gz")
    assert not out.exists() and _nothing_partial_left(tmp_path)


def test_nan_image_is_refused_and_nothing_is_written(tmp_path, capsys):
    data = np.ones((40, 40, 4, 3), dtype=np.float32)
    data[3, 3, 1, 1] = np.nan
    path = _write_nifti(tmp_path / "nan.nii.gz", data)
    out = tmp_path / "out"
    _run_expecting_error(["analyze", str(path), "--out", str(out)], capsys, "nan.nii.gz", "NaN")
    assert not out.exists() and _nothing_partial_left(tmp_path)


def test_empty_image_is_refused(tmp_path, capsys):
    path = _write_nifti(tmp_path / "empty.nii.gz", np.zeros((0, 40, 4), dtype=np.float32))
    _run_expecting_error(["analyze", str(path), "--out", str(tmp_path / "out")], capsys, "empty.nii.gz")
    assert not (tmp_path / "out").exists()


def test_image_without_spacing_is_refused(tmp_path, capsys):
    path = _write_nifti(
        tmp_path / "nospacing.nii.gz", np.ones((40, 40, 4), dtype=np.float32), (0.0, 0.0, 0.0)
    )
    _run_expecting_error(
        ["analyze", str(path), "--out", str(tmp_path / "out")], capsys, "nospacing.nii.gz", "spacing"
    )
    assert not (tmp_path / "out").exists()


def test_segment_refuses_a_4d_image_before_writing_anything(tmp_path, capsys):
    good = _write_nifti(tmp_path / "good.nii.gz", np.ones((40, 40, 4), dtype=np.float32))
    cine = _write_nifti(tmp_path / "cine.nii.gz", np.ones((40, 40, 4, 5), dtype=np.float32))
    out = tmp_path / "seg"
    _run_expecting_error(["segment", str(good), str(cine), "--out", str(out)], capsys, "cine.nii.gz", "3D")
    assert not out.exists()


def test_single_frame_cannot_name_an_end_systolic_frame(tmp_path, capsys):
    path = _write_nifti(tmp_path / "one.nii.gz", np.ones((40, 40, 4), dtype=np.float32))
    _run_expecting_error(["analyze", str(path), "--out", str(tmp_path / "o"), "--es", "5"], capsys, "frame 5")
    assert not (tmp_path / "o").exists()


def test_indices_refuses_a_4d_label_map(tmp_path, capsys):
    ed = _write_nifti(tmp_path / "ed.nii.gz", np.zeros((20, 20, 3, 4), dtype=np.uint8))
    es = _write_nifti(tmp_path / "es.nii.gz", np.zeros((20, 20, 3), dtype=np.uint8))
    out = tmp_path / "i.json"
    _run_expecting_error(
        ["indices", "--ed", str(ed), "--es", str(es), "--out", str(out)], capsys, "ed.nii.gz"
    )
    assert not out.exists()


def test_indices_refuses_foreign_label_values(tmp_path, capsys):
    ed = _write_nifti(tmp_path / "ed.nii.gz", np.full((20, 20, 3), 7, dtype=np.uint8))
    es = _write_nifti(tmp_path / "es.nii.gz", np.zeros((20, 20, 3), dtype=np.uint8))
    _run_expecting_error(
        ["indices", "--ed", str(ed), "--es", str(es), "--out", str(tmp_path / "i.json")], capsys, "7"
    )


def test_an_app_that_cannot_start_is_reported_with_its_log(tmp_path):
    from CardiacMTLApps.web.process import running_app
    from CardiacMTLLib.errors import CardiacError

    log = tmp_path / "server.log"
    with pytest.raises(CardiacError, match=r"exited with status 2; see .*server\.log"):
        with running_app("--device", "tpu", log_path=log, timeout_s=60):
            pass
    assert "invalid choice: 'tpu'" in log.read_text()


def test_the_progress_bar_shows_frames_and_time_not_a_rate_of_batched_reports(capsys):
    """Frames are segmented in batches and reported together: a rate between two reports of one batch
    (the bar once read 155344 frame/s) means nothing, so the bar shows frames done and time taken."""
    update = _progress_bar("segmenting")
    for done in (1, 2, 3, 4):
        update(done, 4)
    update(4, 4)  # the stages after the frames report again: nothing more is drawn
    shown = capsys.readouterr().err
    assert "segmenting" in shown and "4/4 frames" in shown
    assert "/s" not in shown and "it/s" not in shown


def test_every_commands_help_opens_with_a_whole_sentence():
    """``--help`` once read "… import the CAP MESA atlas, project cases," (the first line of a wrapped
    docstring)."""
    for module in (atlas, mtl, train):
        description = module.build_parser().description
        assert description.endswith(".") and "\n" not in description and "  " not in description
    assert atlas.build_parser().description.endswith("project cases, test associations.")


def test_a_batch_whose_out_lies_in_the_cohort_folder_does_not_take_its_results_for_a_study(
    tmp_path, monkeypatch, capsys
):
    """A re-run of ``batch coh --out coh/results`` found ``results`` (which holds DICOM exports) as a study
    and failed with "coh/results: is the input"."""
    import CardiacMTLApps.batch as batch
    from CardiacMTLLib.synthetic.dicom import write_cine_dicom
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case

    cohort = tmp_path / "coh"
    case = generate_synthetic_cine(seed=1, num_frames=3, shape=(64, 64, 4))
    write_synthetic_case(case, tmp_path / "case")
    cohort.mkdir()
    (cohort / "p1.nii.gz").write_bytes((tmp_path / "case" / "synthetic_cine.nii.gz").read_bytes())
    write_cine_dicom(case.cine, cohort / "results" / "studies" / "p1_dicom")  # an earlier run's DICOM export
    passed = []

    class Summary:
        failed = pending = 0

        def describe(self):
            return "done"

    monkeypatch.setattr(
        batch, "run_batch", lambda studies, out, **kwargs: passed.append(studies) or Summary()
    )
    assert main(["batch", str(cohort), "--out", str(cohort / "results")]) == 0
    assert [s.study_id for s in passed[0]] == ["p1"]
    assert "not studies, ignored: results" in capsys.readouterr().out


def test_an_error_during_the_progress_bar_is_reported_on_a_line_of_its_own(capsys):
    """Ctrl-C or an error while frames were segmented printed "interrupted ..." after the bar, on its line."""
    from CardiacMTLApps.cli import mtl as cli
    from CardiacMTLLib.errors import CardiacError

    def command(args):
        update = _progress_bar("segmenting")
        update(2, 10)
        raise CardiacError("frame 3: stopped")

    assert cli.run_reporting_errors("cardiac-mtl", lambda: cli._closing_bars(command, None)) == 2
    shown = capsys.readouterr().err
    assert shown.rstrip("\n").split("\r")[-1].lstrip("\x1b[A").strip().startswith("cardiac-mtl: error:")
    assert not cli._OPEN_BARS
