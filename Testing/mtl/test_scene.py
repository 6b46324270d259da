"""Scene logic on slicer-core: analysis results become MRML nodes with the input's geometry, and edits of
those nodes come back as results.

The results are built from known label maps (the generator's ground truth, ACDC's expert labels) rather
than the network, so every number the nodes show can be checked exactly and the file stays fast; the
browser tests run the network end to end.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

slicer = pytest.importorskip(
    "slicer", reason="slicer-core is not installed (pip install 'trame-slicer[standalone]')"
)

from CardiacAtlasLib.atlas import build_atlas  # noqa: E402
from CardiacAtlasLib.mesh import LVMesh  # noqa: E402
from CardiacAtlasLib.scene import AtlasScene, add_lv_fits, mesh_from_model, mesh_points  # noqa: E402
from CardiacAtlasLib.synthetic import sample_shapes, synthetic_shape_model  # noqa: E402
from CardiacMTLLib.analysis.indices import (  # noqa: E402
    INDEX_UNITS,
    aha_key,
    compute_indices,
    volume_curve_ml,
    wall_thickness_mm,
)
from CardiacMTLLib.analysis.qc import segmentation_qc  # noqa: E402
from CardiacMTLLib.errors import CardiacInputError  # noqa: E402
from CardiacMTLLib.io.cine import read_cine  # noqa: E402
from CardiacMTLLib.io.nifti import read_nifti_volume  # noqa: E402
from CardiacMTLLib.pipeline import ed_es_indices, run_diagnosis  # noqa: E402
from CardiacMTLLib.scene.cardiac import CardiacScene  # noqa: E402
from CardiacMTLLib.scene.markups import landmark_key  # noqa: E402
from CardiacMTLLib.scene.nodes import array_from_volume_node, node_ijk_to_ras, table_rows  # noqa: E402
from CardiacMTLLib.scene.segmentation import LABEL_NAMES, labels_from_segmentation  # noqa: E402
from CardiacMTLLib.scene.sequences import cine_from_sequence  # noqa: E402
from CardiacMTLLib.scene.tables import INDEX_COLUMNS, split_metric  # noqa: E402
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine  # noqa: E402
from CardiacMTLLib.types import AnalysisResult  # noqa: E402


def result_from_labels(cine, labels, ed_index, es_index, diagnosis=None, landmarks=None) -> AnalysisResult:
    """An AnalysisResult as ``analyze`` would make it, from given labels instead of the network."""
    _, indices = ed_es_indices(cine, labels, ed_index, es_index)
    curve = volume_curve_ml(labels, cine.spacing_mm)
    result = AnalysisResult(
        cine=cine,
        labels=labels,
        indices=indices,
        volume_curve_ml={k: [float(v) for v in vals] for k, vals in curve.items()},
        ed_index=ed_index,
        es_index=es_index,
        provenance={"device": "cpu (test)"},
        diagnosis=diagnosis,
        qc=segmentation_qc(labels, cine.spacing_mm, cine.frame_numbers, sorted({ed_index, es_index})),
    )
    result.landmarks = landmarks or []
    return result


@pytest.fixture(scope="module")
def synthetic_case():
    return generate_synthetic_cine(seed=3, num_frames=5, shape=(96, 112, 6), subslices=1)


@pytest.fixture
def synthetic_scene(synthetic_case):
    case = synthetic_case
    landmarks = [dict(p, edited=False) for p in case.rv_insertion_points if p["frame"] in (0, case.es_index)]
    diagnosis = {
        "class": "NOR",
        "probabilities": {"NOR": 0.7, "MINF": 0.1, "DCM": 0.1, "HCM": 0.05, "ARV": 0.05},
        "criteria": [{"class": "NOR", "index": "LVEF (%)", "rule": "> 50", "value": 60.0, "status": "met"}],
        "criteria_summary": {"NOR": "1/1 met"},
    }
    result = result_from_labels(case.cine, case.labels, 0, case.es_index, diagnosis, landmarks)
    calls = []

    def updater(result, landmarks):
        # stands for landmarks.update_landmarks: records the call and derives an index from the points
        calls.append(copy.deepcopy(landmarks))
        updated = copy.copy(result)
        updated.landmarks = landmarks
        updated.indices = dict(result.indices, **{"Edited landmarks": sum(lm["edited"] for lm in landmarks)})
        return updated

    scene = slicer.vtkMRMLScene()
    logic = CardiacScene(scene, landmark_updater=updater)
    logic.load_cine(case.cine)
    logic.show_result(result)
    return logic, result, calls


def test_cine_becomes_a_volume_sequence_with_the_input_geometry(synthetic_case, synthetic_scene):
    logic, _, _ = synthetic_scene
    cine = synthetic_case.cine
    nodes = logic.cine_nodes
    assert nodes.sequence.GetNumberOfDataNodes() == cine.num_frames
    assert nodes.browser.GetMasterSequenceNode() is nodes.sequence
    volume = nodes.volume
    assert volume.GetImageData().GetDimensions() == (112, 96, 6)
    assert np.allclose(volume.GetSpacing(), cine.spacing_mm)
    assert np.allclose(node_ijk_to_ras(volume), cine.affine)  # the generator's affine holds the spacing
    for t in (0, 3):
        frame = nodes.sequence.GetNthDataNode(t)
        assert np.allclose(array_from_volume_node(frame), cine.data[t])
    assert nodes.sequence.GetIndexName() == "time" and nodes.sequence.GetIndexUnit() == "ms"
    assert float(nodes.sequence.GetNthIndexValue(1)) == pytest.approx(cine.trigger_times_ms[1])


def test_sequence_reads_back_as_the_same_cine(synthetic_case, synthetic_scene):
    logic, _, _ = synthetic_scene
    back = cine_from_sequence(logic.cine_nodes.sequence)
    cine = synthetic_case.cine
    assert back.data.shape == cine.data.shape
    assert np.allclose(back.data, cine.data)
    assert np.allclose(back.spacing_mm, cine.spacing_mm)
    assert np.allclose(back.affine, cine.affine)
    assert back.trigger_times_ms == pytest.approx(cine.trigger_times_ms)


def test_segmentation_sequence_has_the_three_structures_and_the_exact_labels(synthetic_scene):
    logic, result, _ = synthetic_scene
    sequence = logic.nodes.segmentation_sequence
    assert sequence.GetNumberOfDataNodes() == result.labels.shape[0]
    assert logic.cine_nodes.browser.IsSynchronizedSequenceNode(sequence)
    proxy = logic.nodes.segmentation.GetSegmentation()
    names = {proxy.GetNthSegment(n).GetName(): proxy.GetNthSegment(n).GetLabelValue() for n in range(3)}
    assert names == {name: value for value, name in LABEL_NAMES.items()}
    assert np.array_equal(logic.labels_from_scene(), result.labels)
    ed_name = sequence.GetNthDataNode(result.ed_index).GetName()
    es_name = sequence.GetNthDataNode(result.es_index).GetName()
    assert ed_name.endswith("(ED)") and es_name.endswith("(ES)")


def test_frame_selection_moves_image_segmentation_and_landmarks_together(synthetic_case, synthetic_scene):
    logic, result, _ = synthetic_scene
    logic.set_frame(result.es_index)
    assert np.allclose(
        array_from_volume_node(logic.cine_nodes.volume), synthetic_case.cine.data[result.es_index]
    )
    shown = labels_from_segmentation(logic.nodes.segmentation, result.labels.shape[1:], logic.matrix)
    assert np.array_equal(shown, result.labels[result.es_index])
    visible = {f: n.GetDisplayNode().GetVisibility() for f, n in logic.nodes.landmarks.items()}
    assert visible == {0: False, result.es_index: True}


def test_indices_table_has_metric_value_unit_rows_for_every_index(synthetic_scene):
    logic, result, _ = synthetic_scene
    rows = table_rows(logic.nodes.indices)
    assert tuple(rows[0]) == INDEX_COLUMNS
    assert len(rows) == len(result.indices)
    by_metric = {(r["Metric"], r["Unit"]): r["Value"] for r in rows}
    assert by_metric[("LVEDV", "mL")] == pytest.approx(result.indices["LVEDV (mL)"])
    assert by_metric[("LVEF", "%")] == pytest.approx(result.indices["LVEF (%)"])
    assert split_metric("RVEDV/LVEDV") == ("RVEDV/LVEDV", "")
    tables = (
        logic.nodes.indices,
        logic.nodes.diagnosis,
        logic.nodes.criteria,
        logic.nodes.qc,
        logic.nodes.curves,
    )
    assert all(table.GetLocked() for table in tables)  # no typing into a result in Slicer's table view


def test_every_index_key_has_its_unit_in_the_one_table(synthetic_case):
    case = synthetic_case
    indices = compute_indices(case.labels[0], case.labels[case.es_index], case.cine.spacing_mm, 170.0, 70.0)
    keys = list(indices) + [aha_key(segment) for segment in range(1, 17)]
    assert not [k for k in keys if k not in INDEX_UNITS]
    for key in keys:
        metric, unit = split_metric(key)
        assert key == (f"{metric} ({unit})" if unit else metric)
    assert split_metric("Max wall thickness ED (mm)") == ("Max wall thickness ED", "mm")
    assert split_metric("LVM/LVEDV (g/mL)") == ("LVM/LVEDV", "g/mL")
    assert split_metric("Not an index (cm)") == ("Not an index (cm)", "")  # units come from the table only


def test_diagnosis_qc_and_volume_curve_nodes(synthetic_scene):
    logic, result, _ = synthetic_scene
    diagnosis = table_rows(logic.nodes.diagnosis)
    assert [r["Class"] for r in diagnosis] == ["NOR", "MINF", "DCM", "HCM", "ARV"]
    assert diagnosis[0]["Probability"] == pytest.approx(0.7)
    assert table_rows(logic.nodes.criteria)[0]["Status"] == "met"
    assert len(table_rows(logic.nodes.qc)) == len(result.qc)
    curves = table_rows(logic.nodes.curves)
    assert [r["Frame"] for r in curves] == result.cine.frame_numbers
    assert [r["LV (mL)"] for r in curves] == pytest.approx(result.volume_curve_ml["LV"])
    chart = logic.nodes.curve_chart
    assert chart.GetNumberOfPlotSeriesNodes() == 3
    assert chart.GetNthPlotSeriesNode(0).GetTableNode() is logic.nodes.curves


def test_landmarks_are_named_markups_at_their_voxel_positions(synthetic_scene):
    logic, result, _ = synthetic_scene
    nodes = logic.nodes.landmarks
    assert set(nodes) == {result.ed_index, result.es_index}
    ed = nodes[result.ed_index]
    expected = [lm for lm in result.landmarks if lm["frame"] == result.ed_index]
    assert ed.GetNumberOfControlPoints() == len(expected) > 0
    for n, landmark in enumerate(expected):
        assert ed.GetNthControlPointLabel(n) == landmark["label"]
        position = np.zeros(3)
        ed.GetNthControlPointPosition(n, position)
        assert position == pytest.approx(landmark["ras"], abs=1e-3)  # generator: ras = affine @ ijk


def test_moving_a_landmark_updates_the_result_and_the_tables(synthetic_scene):
    logic, result, calls = synthetic_scene
    heard = []
    logic.add_listener(heard.append)
    node = logic.nodes.landmarks[result.ed_index]
    before = np.zeros(3)
    node.GetNthControlPointPosition(1, before)
    moved = before + np.array([3.0, -1.5, 0.0])
    node.SetNthControlPointPosition(1, *moved)
    assert len(calls) == 1 and len(heard) == 1
    sent = [lm for lm in calls[0] if lm["edited"]]
    assert len(sent) == 1
    assert sent[0]["ras"] == pytest.approx(moved.tolist(), abs=1e-3)
    # 1.5 mm in plane = 1 voxel along i (RAS x follows i in the generator's affine)
    original = [lm for lm in result.landmarks if lm["frame"] == result.ed_index][1]
    assert sent[0]["ijk"] == pytest.approx(
        [original["ijk"][0] + 2, original["ijk"][1] - 1, original["ijk"][2]], abs=1e-3
    )
    assert logic.result.landmarks == calls[0]
    rows = {r["Metric"]: r["Value"] for r in table_rows(logic.nodes.indices)}
    assert rows["Edited landmarks"] == 1
    assert node.GetNthControlPointLabel(1).endswith("(edited)")
    # an interactive drag reports once, at the end
    slicer_markups = slicer.vtkMRMLMarkupsNode
    node.InvokeEvent(slicer_markups.PointStartInteractionEvent)
    node.SetNthControlPointPosition(0, *(moved + 5))
    node.SetNthControlPointPosition(0, *(moved + 6))
    assert len(calls) == 1
    node.InvokeEvent(slicer_markups.PointEndInteractionEvent)
    assert len(calls) == 2


def test_deleting_a_landmark_leaves_the_others_where_they_are(synthetic_scene):
    logic, result, calls = synthetic_scene
    node = logic.nodes.landmarks[result.ed_index]
    labels = [node.GetNthControlPointLabel(i) for i in range(node.GetNumberOfControlPoints())]
    node.RemoveNthControlPoint(0)  # the Markups module's Delete: the other points' indices shift
    position = np.zeros(3)
    node.GetNthControlPointPosition(0, position)  # the point that was second
    node.SetNthControlPointPosition(0, *(position + [3.0, 0.0, 0.0]))
    moved = [lm for lm in logic.result.landmarks if lm["edited"]]
    assert [lm["label"] for lm in moved] == [labels[1]]
    assert moved[0]["ras"] == pytest.approx((position + [3.0, 0.0, 0.0]).tolist(), abs=1e-3)
    kept = {landmark_key(lm): lm["ijk"] for lm in result.landmarks}
    assert all(lm["ijk"] == kept[landmark_key(lm)] for lm in logic.result.landmarks if not lm["edited"])


def test_the_landmarks_follow_the_frame_however_it_is_chosen(synthetic_scene):
    logic, result, _ = synthetic_scene
    browser = logic.cine_nodes.browser

    def visible():
        return {f for f, node in logic.nodes.landmarks.items() if node.GetDisplayNode().GetVisibility()}

    assert visible() == {result.ed_index}
    browser.SetSelectedItemNumber(result.es_index)  # the Sequences toolbar, or the cine playing
    assert visible() == {result.es_index}
    browser.SetSelectedItemNumber((result.es_index + 1) % result.cine.num_frames)
    assert visible() == set()


def test_a_result_of_another_cine_is_shown_over_its_own_images(synthetic_case, synthetic_scene):
    logic, _, _ = synthetic_scene
    other = generate_synthetic_cine(seed=8, num_frames=5, shape=(96, 112, 6), subslices=1)  # the same grid
    logic.load_cine(other.cine)  # loaded while the first cine's analysis ran
    logic.show_result(result_from_labels(synthetic_case.cine, synthetic_case.labels, 0, 1))
    assert logic.cine is not other.cine and np.array_equal(logic.cine.data, synthetic_case.cine.data)
    shown = array_from_volume_node(logic.cine_nodes.sequence.GetNthDataNode(1))
    assert np.allclose(shown, synthetic_case.cine.data[1])


def test_a_closed_scene_is_let_go_without_touching_its_nodes(synthetic_scene):
    logic, _, _ = synthetic_scene
    count = logic.scene.GetNumberOfNodes()
    logic.forget()
    assert logic.result is None and logic.cine is None and logic.nodes.landmarks == {}
    assert logic.scene.GetNumberOfNodes() == count


def test_a_users_sequence_keeps_its_nodes_and_loses_only_the_results(synthetic_case):
    from CardiacMTLLib.scene.sequences import add_cine
    from CardiacMTLLib.scene.study import Study

    study = Study(slicer.vtkMRMLScene())
    user = add_cine(study.scene, synthetic_case.cine, study.logics, "user cine")  # Add Data's nodes
    count = study.scene.GetNumberOfNodes()
    study.cine_for(user.sequence)
    study.show_result(result_from_labels(study.cine, synthetic_case.labels, 0, 1))
    assert study.nodes.segmentation_sequence is not None and study.cine_nodes.browser is user.browser
    assert user.sequence.GetNthDataNode(0).GetName().endswith("(ED)")
    shown = study.result
    study.cine_for(user.sequence)  # the next Segment & diagnose of the same sequence keeps the result
    assert study.result is shown
    study.clear()
    assert study.scene.GetNumberOfNodes() == count  # the results gone, the user's cine as it was
    assert all(study.scene.IsNodePresent(node) for node in (user.sequence, user.browser, user.volume))
    assert user.browser.GetNumberOfSynchronizedSequenceNodes() == 0
    assert not user.sequence.GetNthDataNode(0).GetName().endswith("(ED)")


def test_dragging_an_insertion_point_recomputes_the_aha_wall_thickness(synthetic_case):
    from CardiacMTLLib.analysis.landmarks.edits import aha_indices
    from CardiacMTLLib.analysis.landmarks.rv_insertion import detect_sax_landmarks

    case = synthetic_case
    points = detect_sax_landmarks(case.labels, case.cine, (0, case.es_index))
    result = result_from_labels(case.cine, case.labels, 0, case.es_index, landmarks=points)
    result.indices.update(aha_indices(result))
    logic = CardiacScene(slicer.vtkMRMLScene())  # the library's own updater
    logic.load_cine(case.cine)
    logic.show_result(result)
    before = {r["Metric"]: r["Value"] for r in table_rows(logic.nodes.indices)}
    mid = case.cine.num_slices // 2
    index = next(
        i
        for i, p in enumerate(result.landmarks)
        if p["frame"] == 0 and p["slice"] == mid and "ANTERIOR" in p["label"]
    )
    node, point = logic.landmark_point(index)
    position = np.zeros(3)
    node.GetNthControlPointPosition(point, position)
    node.SetNthControlPointPosition(point, *(position + np.array([6.0, 6.0, 0.0])))
    moved = [p for p in logic.result.landmarks if p["edited"]]
    assert len(moved) == 1 and moved[0]["source"] == "user"
    assert moved[0]["ras"] == pytest.approx((position + [6.0, 6.0, 0.0]).tolist(), abs=0.01)
    after = {r["Metric"]: r["Value"] for r in table_rows(logic.nodes.indices)}
    aha = [k for k in before if k.startswith("WT_AHA")]
    assert aha and any(before[k] != pytest.approx(after[k], abs=1e-6) for k in aha)
    assert logic.result.provenance["landmarks edited by a person"] == 1
    assert node.GetNthControlPointLabel(point).endswith("(edited)")
    assert result.landmarks == points  # the result shown first is left as it was


def test_clearing_removes_every_node_of_the_study(synthetic_scene):
    logic, _, _ = synthetic_scene
    scene = logic.scene
    before = scene.GetNumberOfNodes()
    assert scene.GetNodesByClass("vtkMRMLSequenceNode").GetNumberOfItems() == 2
    logic.clear()
    assert scene.GetNodesByClass("vtkMRMLSequenceNode").GetNumberOfItems() == 0
    assert scene.GetNodesByClass("vtkMRMLMarkupsFiducialNode").GetNumberOfItems() == 0
    assert scene.GetNodesByClass("vtkMRMLTableNode").GetNumberOfItems() == 0
    assert (
        scene.GetNodesByClass("vtkMRMLSegmentationDisplayNode").GetNumberOfItems() == 0
    )  # nor their companions
    assert scene.GetNumberOfNodes() < before


def test_labels_that_do_not_match_the_cine_are_refused(synthetic_case):
    logic = CardiacScene(slicer.vtkMRMLScene(), landmark_updater=lambda r, lm: r)
    logic.load_cine(synthetic_case.cine)
    bad = result_from_labels(synthetic_case.cine, synthetic_case.labels, 0, 1)
    bad.labels = bad.labels[:, :3]
    with pytest.raises(CardiacInputError, match="do not match"):
        logic.show_result(bad)


@pytest.mark.data
def test_acdc_patient_nodes_have_the_file_geometry_and_expert_labels(acdc_dir):
    patient = acdc_dir / "patient001"
    cine = read_cine(patient)
    labels = np.stack(
        [read_nifti_volume(patient / f"patient001_frame{n:02d}_gt.nii.gz")[0] for n in cine.frame_numbers]
    ).astype(np.uint8)
    ed, es = cine.frame_index(cine.end_diastole), cine.frame_index(cine.end_systole)
    result = result_from_labels(cine, labels, ed, es)
    result.diagnosis = run_diagnosis(
        result.indices, labels[ed], labels[es], cine, wall_thickness_mm(labels[ed], cine.spacing_mm)
    )
    logic = CardiacScene(slicer.vtkMRMLScene(), landmark_updater=lambda r, lm: r)
    logic.load_cine(cine)
    logic.show_result(result)
    volume = logic.cine_nodes.volume
    # ACDC files carry a unit (flipped) affine and the spacing in pixdim: the node gets both right
    assert volume.GetSpacing() == pytest.approx(cine.spacing_mm)
    directions = node_ijk_to_ras(volume)[:3, :3] / np.asarray(cine.spacing_mm)
    assert directions == pytest.approx(cine.affine[:3, :3])
    assert volume.GetImageData().GetDimensions() == cine.data.shape[:0:-1]
    assert logic.cine_nodes.sequence.GetIndexName() == "frame"
    assert [logic.cine_nodes.sequence.GetNthIndexValue(n) for n in range(2)] == ["1", "12"]
    assert np.array_equal(logic.labels_from_scene(), labels)
    rows = {(r["Metric"], r["Unit"]): r["Value"] for r in table_rows(logic.nodes.indices)}
    assert rows[("LVEDV", "mL")] == pytest.approx(result.indices["LVEDV (mL)"])
    assert rows[("ED frame", "")] == 1 and rows[("ES frame", "")] == 12
    diagnosis = table_rows(logic.nodes.diagnosis)
    assert sum(r["Probability"] for r in diagnosis) == pytest.approx(1.0, abs=1e-3)
    assert logic.nodes.diagnosis.GetAttribute("CardiacMTL.class") == result.diagnosis["class"]


# ------------------------------------------------------------------------------------- atlas side


@pytest.fixture(scope="module")
def small_atlas():
    model = synthetic_shape_model(n_long=9, n_circ=12)
    shapes, _ = sample_shapes(model, 12, seed=1)
    atlas = build_atlas(
        shapes, [f"c{i}" for i in range(12)], model.faces_endo, model.faces_epi, model.n_endo, n_modes=6
    )
    return atlas, shapes


def test_atlas_mode_slider_reshapes_the_displayed_mean(small_atlas):
    atlas, _ = small_atlas
    scene = slicer.vtkMRMLScene()
    view = AtlasScene(scene, atlas, phase="ED", n_sliders=3)
    mean = atlas.mesh(atlas.shape(), "ED").points_mm
    assert mesh_points(view.model) == pytest.approx(mean)
    volume_mean = view.shape_volumes_ml()[0]
    points = view.set_mode_sd({0: 2.0})
    expected = atlas.mesh(atlas.mode_shape(0, 2.0), "ED").points_mm
    assert mesh_points(view.model) == pytest.approx(expected)
    assert points == pytest.approx(expected)
    # mode 1 is the largest variation; + is the direction that enlarges the mean (atlas convention)
    assert view.shape_volumes_ml()[0] > volume_mean
    view.set_mode_sd({0: 9.0})
    assert view.sd[0] == 3.0
    with pytest.raises(CardiacInputError, match="mode must be"):
        view.set_mode_sd({5: 1.0})
    rows = table_rows(view.variance)
    assert [r["Mode"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["Explained (%)"] for r in rows] == pytest.approx(100 * atlas.explained_variance_ratio_[:6])
    assert view.variance_chart.GetNumberOfPlotSeriesNodes() == 2


def test_patient_scores_and_lv_model_nodes_round_trip(small_atlas):
    atlas, shapes = small_atlas
    scene = slicer.vtkMRMLScene()
    meshes = {p: atlas.mesh(shapes[4], p) for p in atlas.phases}
    models = add_lv_fits(scene, meshes)
    assert set(models) == {"ED", "ES"}
    back = mesh_from_model(models["ED"])
    assert isinstance(back, LVMesh) and back.n_endo == atlas.n_endo_
    assert back.points_mm == pytest.approx(shapes[4][0])
    assert np.array_equal(back.faces_endo, atlas.faces_endo_)
    view = AtlasScene(scene, atlas, n_sliders=3)
    scores = view.project_case(meshes)
    assert scores[:3] == pytest.approx(atlas.scores_[4, :3], abs=0.01 * atlas.sd_mm_[0])
    rows = table_rows(view.scores)
    assert rows[0]["Score (SD)"] == pytest.approx(atlas.scores_[4, 0] / atlas.sd_mm_[0])
    # a refit replaces the polydata of the same nodes
    again = add_lv_fits(scene, {"ED": atlas.mesh(shapes[5], "ED")}, models)
    assert again["ED"] is models["ED"]
    assert mesh_points(models["ED"]) == pytest.approx(shapes[5][0])
