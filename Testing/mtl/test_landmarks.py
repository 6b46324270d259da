"""Landmarks: RV insertion points from label maps, the markups files, edits, AHA segments, mitral hinges."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from CardiacMTLLib.analysis.indices import aha_key, aha_wall_thickness_mm, compute_indices
from CardiacMTLLib.analysis.landmarks.edits import update_landmarks
from CardiacMTLLib.analysis.landmarks.rv_insertion import detect_sax_landmarks, rv_insertion_points
from CardiacMTLLib.io.landmarks import (
    MARKUPS_SCHEMA,
    RV_INSERT_ANTERIOR,
    RV_INSERT_INFERIOR,
    insertions_of_frame,
    markups_document,
    read_landmarks_file,
    write_landmark_files,
)
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine


@pytest.fixture(scope="module")
def case():
    return generate_synthetic_cine(seed=3, num_frames=4, shape=(128, 128, 7), spacing_mm=(1.6, 1.6, 9.0))


@pytest.fixture(scope="module")
def result(case):
    """An analysis result built from the generator's exact labels (no network needed)."""
    from CardiacMTLLib.types import AnalysisResult

    cine, labels = case.cine, case.labels
    ed, es = case.ed_index, case.es_index
    landmarks = detect_sax_landmarks(labels, cine, (ed, es))
    indices = compute_indices(labels[ed], labels[es], cine.spacing_mm)
    indices.update(aha_wall_thickness_mm(labels[ed], cine.spacing_mm, insertions_of_frame(landmarks, ed)))
    return AnalysisResult(
        cine=cine,
        labels=labels,
        indices=indices,
        volume_curve_ml={},
        ed_index=ed,
        es_index=es,
        landmarks=landmarks,
    )


def _in_plane_error_mm(a, b, spacing):
    return float(np.hypot((a[0] - b[0]) * spacing[0], (a[1] - b[1]) * spacing[1]))


def test_insertion_points_of_synthetic_cine_land_at_the_true_junctions(case):
    truth = {(p["frame"], p["slice"], p["label"]): p["ijk"] for p in case.rv_insertion_points}
    errors = []
    for t in range(case.cine.num_frames):
        found = rv_insertion_points(case.labels[t], case.cine.spacing_mm, case.cine.affine, frame=t)
        keys = {(p["frame"], p["slice"], p["label"]) for p in found}
        assert keys == {k for k in truth if k[0] == t}  # every slice with both ventricles, right names
        errors += [
            _in_plane_error_mm(p["ijk"], truth[(t, p["slice"], p["label"])], case.cine.spacing_mm)
            for p in found
        ]
    # the generator's junction is where the RV ellipse meets the epicardial curve; pixels are 1.6 mm
    assert np.median(errors) < 1.5
    assert max(errors) < 3.5


def test_longest_circular_run_wraps_around_the_end():
    from CardiacMTLLib.analysis.landmarks.common import longest_circular_run

    assert longest_circular_run(np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1], bool)) == (8, 6)  # 8..11, 0..1
    assert longest_circular_run(np.array([0, 1, 1, 0, 1, 0], bool)) == (1, 2)
    assert longest_circular_run(np.zeros(5, bool)) == (0, 0)
    assert longest_circular_run(np.ones(5, bool)) == (0, 5)


def test_the_network_rv_cut_short_at_the_septum_is_read_with_its_likely_rv_pixels(case):
    from scipy import ndimage

    from CardiacMTLLib.analysis.segment import rv_contact_mask

    labels = case.labels[0]
    expected = rv_insertion_points(labels, case.cine.spacing_mm, case.cine.affine)
    # a network that stops the RV two pixels short of the LV, though it gives those pixels 40 % RV
    lv = (labels == 2) | (labels == 3)
    near_lv = ndimage.binary_dilation(lv, structure=np.ones((1, 3, 3)), iterations=2) & (labels == 1)
    cut = np.where(near_lv, 0, labels).astype(np.uint8)
    probs = np.stack([cut == value for value in range(4)]).astype(np.float32)
    probs[0][near_lv], probs[1][near_lv] = 0.6, 0.4
    stray = np.zeros_like(near_lv)
    stray[:, 2:6, 2:6] = True  # an unsure blob in a corner, far from the RV: not RV
    probs[0][stray], probs[1][stray] = 0.6, 0.4
    mask = rv_contact_mask(probs, cut)
    assert mask[near_lv].all() and not mask[stray].any() and (mask == ((labels == 1) | near_lv)).all()
    assert len(rv_insertion_points(cut, case.cine.spacing_mm, case.cine.affine)) < len(expected)
    found = rv_insertion_points(cut, case.cine.spacing_mm, case.cine.affine, rv_mask=mask)
    assert [(p["slice"], p["label"]) for p in found] == [(p["slice"], p["label"]) for p in expected]
    for p, q in zip(found, expected, strict=True):
        assert _in_plane_error_mm(p["ijk"], q["ijk"], case.cine.spacing_mm) < 0.5


def test_anterior_insertion_is_up_in_an_unoriented_image_and_names_follow_the_anatomy_when_oriented(case):
    labels = case.labels[0]
    points = rv_insertion_points(labels, case.cine.spacing_mm, case.cine.affine)
    by_slice = {}
    for p in points:
        by_slice.setdefault(p["slice"], {})[p["label"]] = p
    for pair in by_slice.values():
        assert pair[RV_INSERT_ANTERIOR]["ijk"][1] < pair[RV_INSERT_INFERIOR]["ijk"][1]
    # with a patient orientation the anterior insertion is the one further anterior and superior (RAS y + z)
    affine = np.array([[1.5, 0, 0, 0], [0, 0.3, 0.05, 0], [0, -1.5, 0.1, 0], [0, 0, 0, 1]], dtype=float)
    oriented = {}
    for p in rv_insertion_points(labels, case.cine.spacing_mm, affine):
        oriented.setdefault(p["slice"], {})[p["label"]] = p["ras"][1] + p["ras"][2]
    assert oriented
    for pair in oriented.values():
        assert pair[RV_INSERT_ANTERIOR] >= pair[RV_INSERT_INFERIOR]


def test_points_lie_inside_the_image_and_carry_both_coordinates(result):
    cine = result.cine
    assert result.landmarks
    for p in result.landmarks:
        i, j, k = p["ijk"]
        assert 0 <= i <= cine.data.shape[3] - 1 and 0 <= j <= cine.data.shape[2] - 1
        assert k == p["slice"] and 0 <= k < cine.num_slices
        ras = cine.ras_affine @ np.array([i, j, k, 1.0])
        np.testing.assert_allclose(ras[:3], p["ras"], atol=0.01)
        assert p["edited"] is False
    assert {p["frame"] for p in result.landmarks} == {result.ed_index, result.es_index}


def test_markups_file_follows_the_slicer_schema_in_lps(result, tmp_path):
    write_landmark_files(result.landmarks, tmp_path)
    document = json.loads((tmp_path / "landmarks.mrk.json").read_text())
    assert document["@schema"] == MARKUPS_SCHEMA
    names = [m["name"] for m in document["markups"]]
    assert names == [RV_INSERT_ANTERIOR, RV_INSERT_INFERIOR]  # one fiducial list per landmark type
    by_label = {}
    for markup in document["markups"]:
        assert markup["type"] == "Fiducial" and markup["coordinateSystem"] == "LPS"
        assert markup["coordinateUnits"] == "mm"
        for cp in markup["controlPoints"]:
            assert cp["label"] == markup["name"] and cp["positionStatus"] == "defined"
            by_label.setdefault(cp["label"], []).append(cp["position"])
    first = next(p for p in result.landmarks if p["label"] == RV_INSERT_ANTERIOR)
    x, y, z = first["ras"]
    assert by_label[RV_INSERT_ANTERIOR][0] == pytest.approx([-x, -y, z])
    plain = json.loads((tmp_path / "landmarks.json").read_text())
    assert isinstance(plain, list) and len(plain) == len(result.landmarks)
    assert set(plain[0]) >= {"label", "frame", "slice", "ijk", "ras", "edited"}


def test_markups_file_loads_in_slicer_with_positions_in_ras(result, tmp_path):
    slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
    write_landmark_files(result.landmarks, tmp_path)
    scene = slicer.vtkMRMLScene()
    storage = slicer.vtkMRMLMarkupsJsonStorageNode()
    scene.AddNode(storage)
    node = storage.AddNewMarkupsNodeFromFile(str(tmp_path / "landmarks.mrk.json"), "", 0)
    assert node is not None and node.GetName() == RV_INSERT_ANTERIOR
    expected = [p for p in result.landmarks if p["label"] == RV_INSERT_ANTERIOR]
    assert node.GetNumberOfControlPoints() == len(expected)
    for n, p in enumerate(expected):
        assert node.GetNthControlPointLabel(n) == RV_INSERT_ANTERIOR
        assert list(node.GetNthControlPointPosition(n)) == pytest.approx(p["ras"], abs=1e-3)


def test_both_files_read_back_to_the_same_points_and_unmoved_points_are_not_edits(result, tmp_path):
    write_landmark_files(result.landmarks, tmp_path)
    for name in ("landmarks.json", "landmarks.mrk.json"):
        points = read_landmarks_file(tmp_path / name)
        assert len(points) == len(result.landmarks)
        same = update_landmarks(result, points)
        assert not any(p["edited"] for p in same.landmarks)
        assert same.indices[aha_key(1)] == result.indices[aha_key(1)]


def test_aha_segments_of_the_synthetic_heart_are_all_measured(result, case):
    values = [result.indices[aha_key(s)] for s in range(1, 17)]
    assert all(v is not None for v in values)
    # the generator's basal wall is ~9 mm at ED, thinner towards the apex
    assert 5.0 < min(values) and max(values) < 14.0


def test_moving_a_point_marks_it_edited_and_recomputes_the_aha_segments(result):
    ed = result.ed_index
    moved = json.loads(json.dumps(result.landmarks))
    centre = np.argwhere(result.labels[ed] == 3)[:, 1:].mean(axis=0)  # (row, col) over all slices
    target = []
    for p in moved:
        if p["frame"] == ed:
            # rotate every ED insertion by 60 degrees about the LV: the septum, hence the segments, turn
            c, r = p["ijk"][0] - centre[1], p["ijk"][1] - centre[0]
            angle = np.deg2rad(60.0)
            p["ijk"] = [
                centre[1] + c * np.cos(angle) - r * np.sin(angle),
                centre[0] + c * np.sin(angle) + r * np.cos(angle),
                p["ijk"][2],
            ]
            p.pop("ras")
            target.append((p["label"], p["slice"]))
    updated = update_landmarks(result, moved)
    edited = {(p["label"], p["slice"]) for p in updated.landmarks if p["edited"]}
    assert edited == set(target)
    assert all(p["source"] == "user" for p in updated.landmarks if p["edited"])
    assert not any(p["edited"] for p in result.landmarks)  # the original result is unchanged
    before = np.array([result.indices[aha_key(s)] for s in range(1, 17)])
    after = np.array([updated.indices[aha_key(s)] for s in range(1, 17)])
    assert np.abs(after - before).max() > 0.1
    assert updated.provenance["landmarks edited by a person"] == len(target)
    # everything that does not depend on the landmarks stays as it was
    assert updated.indices["LVEDV (mL)"] == result.indices["LVEDV (mL)"]


def test_a_landmark_outside_the_image_is_refused(result):
    from CardiacMTLLib.errors import CardiacInputError

    bad = dict(result.landmarks[0], ijk=[1e4, 0.0, 0.0])
    with pytest.raises(CardiacInputError, match="outside the image"):
        update_landmarks(result, [bad])


def test_landmarks_of_another_study_are_refused_naming_the_file(result):
    from CardiacMTLLib.errors import CardiacInputError

    other = dict(result.landmarks[0], frame=max(result.cine.frame_numbers) + 7)  # a frame this cine lacks
    with pytest.raises(CardiacInputError, match=r"other\.json: .* on frame \d+, but this cine's frames"):
        update_landmarks(result, [other], source="other.json")


def test_analyze_with_a_corrected_landmarks_file_records_the_edit(case, tmp_path):
    from CardiacMTLApps.cli.mtl import main
    from CardiacMTLLib.synthetic.sax import write_synthetic_case

    small = generate_synthetic_cine(seed=5, num_frames=2, shape=(112, 112, 6), spacing_mm=(1.8, 1.8, 10.0))
    write_synthetic_case(small, tmp_path / "in")
    assert (
        main(
            [
                "analyze",
                str(tmp_path / "in" / "synthetic_cine.nii.gz"),
                "--out",
                str(tmp_path / "a"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    points = json.loads((tmp_path / "a" / "landmarks.json").read_text())
    assert points and (tmp_path / "a" / "landmarks.mrk.json").exists()
    indices = json.loads((tmp_path / "a" / "indices.json").read_text())["indices"]
    assert aha_key(16) in indices
    points[0]["ijk"][0] += 3.0
    points[0].pop("ras")
    (tmp_path / "fixed.json").write_text(json.dumps(points))
    assert (
        main(
            [
                "analyze",
                str(tmp_path / "in" / "synthetic_cine.nii.gz"),
                "--out",
                str(tmp_path / "b"),
                "--device",
                "cpu",
                "--landmarks",
                str(tmp_path / "fixed.json"),
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "b" / "landmarks.json").read_text())
    assert [p["edited"] for p in again].count(True) == 1
    edited = next(p for p in again if p["edited"])
    assert edited["ijk"][0] == pytest.approx(points[0]["ijk"][0], abs=1e-3)


def _long_axis_heart(angle_deg=35.0, shape=(160, 170)):
    """A long-axis LV: a half-ellipse cavity from the valve line to the apex, an 8-pixel wall round it but
    not across the valve. Returns the label map, the hinge points (row, col) and the geometry."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    u_dir = np.array([np.sin(np.deg2rad(angle_deg)), np.cos(np.deg2rad(angle_deg))])  # valve -> apex (r, c)
    v_dir = np.array([-u_dir[1], u_dir[0]])
    base = np.array([50.0, 60.0])
    u = (rows - base[0]) * u_dir[0] + (cols - base[1]) * u_dir[1]
    v = (rows - base[0]) * v_dir[0] + (cols - base[1]) * v_dir[1]
    labels = np.zeros(shape, dtype=np.uint8)
    labels[(u >= 0) & ((u / 70) ** 2 + (v / 25) ** 2 <= 1)] = 3
    wall = (u >= 0) & ((u / 78) ** 2 + (v / 33) ** 2 <= 1) & (labels == 0)
    labels[wall] = 2
    hinges = [tuple(base + s * 25 * v_dir) for s in (-1, 1)]
    return labels, sorted(hinges, key=lambda p: p[1]), (base, u_dir, v_dir)


@pytest.mark.parametrize("angle", [35.0, 75.0, 120.0])
def test_mitral_hinges_are_where_the_wall_ends_around_the_cavity(angle):
    from CardiacMTLLib.analysis.landmarks.mitral import hinges_from_lax_labels

    labels, truth, _ = _long_axis_heart(angle)
    found = hinges_from_lax_labels(labels, (1.4, 1.4))
    assert found is not None and found == sorted(found, key=lambda p: p[1])
    for p, q in zip(found, truth, strict=True):
        assert np.hypot(*np.subtract(p, q)) < 2.0  # pixels
    # a cavity the wall closes all round (no opening) or a frame without wall has no hinges
    closed = np.where(labels == 0, 2, labels).astype(np.uint8)
    assert hinges_from_lax_labels(closed, (1.4, 1.4)) is None
    assert hinges_from_lax_labels(np.where(labels == 2, 0, labels), (1.4, 1.4)) is None


def test_long_axis_labels_from_open_contours_close_at_the_valve_and_give_back_its_ends():
    from CardiacMTLLib.analysis.landmarks.mitral import hinges_from_lax_labels
    from CardiacMTLLib.datasets.bivme import lax_contour_labels

    _, truth, (base, u_dir, v_dir) = _long_axis_heart(35.0)
    t = np.linspace(-np.pi / 2, np.pi / 2, 60)
    endo = np.array([base + 70 * np.cos(a) * u_dir + 25 * np.sin(a) * v_dir for a in t])
    epi = np.array([base + 78 * np.cos(a) * u_dir + 33 * np.sin(a) * v_dir for a in t])
    endo = np.vstack([endo, endo[0] + [0.5, 0.5]])  # a stray copy of the first point at the end
    epi = np.vstack([epi[30:], epi[:30]])  # the epicardium listed in two pieces
    labels = lax_contour_labels(endo, epi, (160, 170))
    rows, cols = np.nonzero(labels == 2)
    beyond_valve = (rows - base[0]) * u_dir[0] + (cols - base[1]) * u_dir[1] < -1.5
    assert (labels == 3).sum() == pytest.approx(np.pi * 70 * 25 / 2, rel=0.03)
    assert (labels == 2).sum() == pytest.approx(np.pi * (78 * 33 - 70 * 25) / 2, rel=0.06)
    assert not beyond_valve.any()
    found = hinges_from_lax_labels(labels, (1.4, 1.4))
    for p, q in zip(found, truth, strict=True):
        assert np.hypot(*np.subtract(p, q)) < 2.0


@pytest.mark.parametrize("method", ["segmentation", "vgg"])
def test_mitral_hinges_on_a_synthetic_long_axis_cine(tmp_path, method):
    import nibabel as nib

    from CardiacMTLApps.cli.mtl import main
    from CardiacMTLLib.synthetic.lax import synthetic_lax_cine

    images, truth = synthetic_lax_cine(seed=7, view="4ch", num_frames=3)
    assert truth.shape == (3, 2, 2) and np.all(truth[:, 0, 1] <= truth[:, 1, 1])
    affine = np.diag([1.40625, 1.40625, 1.0, 1.0])
    nib.save(
        nib.Nifti1Image(np.ascontiguousarray(images.transpose(2, 1, 0)), affine), str(tmp_path / "lax.nii.gz")
    )
    assert (
        main(
            [
                *("landmarks", str(tmp_path / "lax.nii.gz"), "--view", "4ch"),
                *("--out", str(tmp_path / "out"), "--method", method),
            ]
        )
        == 0
    )
    points = json.loads((tmp_path / "out" / "landmarks.json").read_text())
    assert len(points) == 6 and {p["label"] for p in points} == {"MV_HINGE_1", "MV_HINGE_2"}
    for p in points:
        i, j, _ = p["ijk"]
        assert 0 <= i <= 255 and 0 <= j <= 207
    document = json.loads((tmp_path / "out" / "landmarks.mrk.json").read_text())
    assert [m["name"] for m in document["markups"]] == ["MV_HINGE_1", "MV_HINGE_2"]
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["method"] == method
    assert (tmp_path / "out" / "landmarks.png").stat().st_size > 5_000  # the hinges drawn on the frames
    if method == "segmentation":  # and the label maps they were read from, on the cine's grid
        labels = np.asarray(nib.load(str(tmp_path / "out" / "lax_segmentation.nii.gz")).dataobj)
        assert labels.shape == (256, 208, 1, 3) and set(np.unique(labels)) <= {0, 1, 2, 3}  # x, y, z, t
    else:
        assert not (tmp_path / "out" / "lax_segmentation.nii.gz").exists()


def test_markups_document_without_points_is_empty():
    assert markups_document([])["markups"] == []


@pytest.mark.data
def test_mitral_hinges_on_the_bivme_four_chamber_series(bivme_dicom_dir, tmp_path):
    from CardiacMTLLib.actions import landmarks_path
    from CardiacMTLLib.datasets.bivme import bivme_lax_series

    points = landmarks_path(bivme_dicom_dir / "Se6", "4ch", tmp_path / "out")
    assert len(points) == 50
    assert all(0 <= p["ijk"][0] <= 255 and 0 <= p["ijk"][1] <= 207 for p in points)
    assert Path(tmp_path / "out" / "landmarks.mrk.json").exists()
    # against biv-me's MITRAL_VALVE points of the same phases (the shipped network saw this series in
    # training, so this checks the shipped detector end to end, not how it generalises: see its model card)
    series = next(s for s in bivme_lax_series(bivme_dicom_dir.parent) if s.name == "Se6")
    errors = []
    for p in points:
        truth = series.points_rc[p["frame"], 0 if p["label"] == "MV_HINGE_1" else 1]
        errors.append(np.hypot(*((np.array([p["ijk"][1], p["ijk"][0]]) - truth) * series.spacing_rc)))
    assert np.median(errors) < 5.0


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("method", ["segmentation", "vgg"])
def test_long_axis_training_writes_a_loadable_model_with_its_leave_one_series_out_scores(
    bivme_dicom_dir, tmp_path, method
):
    from CardiacMTLApps.cli.train import main as train_main
    from CardiacMTLLib.analysis.landmarks.mitral import (
        detect_mv_hinges,
        load_lax_model,
        load_lax_segmentation_model,
    )
    from CardiacMTLLib.io.lax import read_lax_cine

    quick = ["--iterations", "2", "--batch-size", "2"] if method == "segmentation" else []
    if method == "vgg":
        quick = [
            *("--epochs", "1", "--synthetic-cines", "2", "--width", "4", "--dense-units", "8"),
            "--size",
            "64",
        ]
    out = tmp_path / "run"
    train_main(
        [
            "landmarks",
            "--view",
            "lax",
            "--method",
            method,
            "--data",
            str(bivme_dicom_dir.parent),
            "--out",
            str(out),
        ]
        + quick
    )
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["sha256"]["weights.pt"] and manifest["training"]["command"].startswith("cardiac-train")
    folds = manifest["leave_one_series_out"]
    held_out = folds["per_series"] if method == "segmentation" else {row["held_out"]: row for row in folds}
    assert set(held_out) == {"Se6", "Se7", "Se8"}
    model = (load_lax_segmentation_model if method == "segmentation" else load_lax_model)(out / "model")
    points = detect_mv_hinges(read_lax_cine(bivme_dicom_dir / "Se8"), model, method)
    assert len(points) == 50


def test_the_report_marks_the_insertion_points_of_its_slices(result, tmp_path):
    import dataclasses

    from CardiacMTLLib.analysis.indices import volume_curve_ml
    from CardiacMTLLib.report.figures import mid_ventricular_slice, slice_landmarks, write_report

    k = mid_ventricular_slice(result.labels[result.ed_index])
    points = slice_landmarks(result, result.ed_index, k)
    assert sorted(p["label"] for p in points) == [RV_INSERT_ANTERIOR, RV_INSERT_INFERIOR]
    assert all(p["slice"] == k and p["frame"] == result.cine.frame_numbers[result.ed_index] for p in points)
    moved = dict(points[0], ijk=[points[0]["ijk"][0] + 2, points[0]["ijk"][1], k])
    edited = update_landmarks(result, [moved])
    assert sum(p["edited"] for p in slice_landmarks(edited, edited.ed_index, k)) == 1
    curve = volume_curve_ml(edited.labels, edited.cine.spacing_mm)
    path = write_report(dataclasses.replace(edited, volume_curve_ml=curve), tmp_path / "report.png")
    assert path.stat().st_size > 10_000


def test_long_axis_frames_without_hinges_borrow_the_nearest_and_none_at_all_falls_back_to_vgg(monkeypatch):
    import CardiacMTLLib.analysis.landmarks.mitral as lax
    from CardiacMTLLib.types import Cine

    heart, truth, _ = _long_axis_heart(75.0)
    frames = np.stack([heart, np.zeros_like(heart), np.zeros_like(heart), heart])  # frames 1, 2 unreadable
    cine = Cine(
        data=np.zeros((4, 1, *heart.shape), dtype=np.float32),
        spacing_mm=(1.4, 1.4, 6.0),
        affine=np.diag([1.4, 1.4, 6.0, 1.0]),
        frame_numbers=[0, 1, 2, 3],
    )
    model = SimpleNamespace(model_id="lax-test")
    monkeypatch.setattr(lax, "segment_lax", lambda m, c: frames)
    points = lax.detect_mv_hinges(cine, model, "segmentation")
    assert [p["frame"] for p in points] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [p["source"] for p in points[2:6]] == ["lax-test (frame 0)"] * 2 + ["lax-test (frame 3)"] * 2
    for p in points:
        q = truth[0 if p["label"] == "MV_HINGE_1" else 1]
        assert np.hypot(p["ijk"][1] - q[0], p["ijk"][0] - q[1]) < 2.0
    monkeypatch.setattr(lax, "segment_lax", lambda m, c: np.zeros_like(frames))
    fallback = lax.detect_mv_hinges(cine, model, "segmentation")
    assert len(fallback) == 8 and {p["source"] for p in fallback} == {"bivme-mv-hinge-vgg"}


def test_acdc_landmarks_are_in_millimetres_where_slicer_places_the_image(acdc_dir, tmp_path):
    """ACDC's files store a unit affine beside their pixdim: ``ras`` was ``affine @ ijk``, voxel units
    (1/1.56 of the distance in plane, 1/10 across slices), where Slicer and the LV model fit use mm."""
    from CardiacMTLLib.io.cine import read_cine
    from CardiacMTLLib.io.landmarks import complete_point
    from CardiacMTLLib.io.nifti import read_nifti_volume

    cine = read_cine(acdc_dir / "patient001")
    assert np.allclose(np.linalg.norm(cine.affine[:3, :3], axis=0), 1.0)  # the quirk this is about
    labels = np.rint(read_nifti_volume(acdc_dir / "patient001" / "patient001_frame01_gt.nii.gz")[0])
    points = rv_insertion_points(labels.astype(np.uint8), cine.spacing_mm, cine.affine, frame=1)
    a, b = points[0], points[-1]
    ijk_mm = np.subtract(b["ijk"], a["ijk"]) * cine.spacing_mm
    assert np.linalg.norm(np.subtract(b["ras"], a["ras"])) == pytest.approx(np.linalg.norm(ijk_mm), abs=0.01)
    write_landmark_files(points, tmp_path)  # Slicer's markups file (LPS mm), read back: the same voxels
    given = {(p["label"], p["slice"]): p["ijk"] for p in points}
    back = read_landmarks_file(tmp_path / "landmarks.mrk.json")
    assert len(back) == len(points)
    for point in back:
        ijk = complete_point(dict(point, ijk=None), cine.ras_affine, labels.shape)["ijk"]
        assert ijk == pytest.approx(given[point["label"], point["slice"]], abs=0.01)
