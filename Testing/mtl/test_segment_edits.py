"""Correcting the segmentation in the scene: Segment Editor's edits of the segmentation sequence are kept
across frame changes, and "Update results" recomputes every result from the edited frames.

The edits go where Segment Editor puts them: into the displayed segmentation node's binary labelmap of one
segment (``vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment``, as its effects do), on slicer-core.
"""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip(
    "slicer", reason="slicer-core is not installed (pip install 'trame-slicer[standalone]')"
)

from CardiacMTLLib.errors import CardiacError  # noqa: E402
from CardiacMTLLib.pipeline import measure  # noqa: E402
from CardiacMTLLib.scene.cardiac import CardiacScene  # noqa: E402
from CardiacMTLLib.scene.nodes import table_rows  # noqa: E402
from CardiacMTLLib.scene.segmentation import labels_from_segmentation, set_segment_mask  # noqa: E402
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine  # noqa: E402
from CardiacMTLLib.types import Label  # noqa: E402

LV = int(Label.LV_CAVITY)


@pytest.fixture(scope="module")
def measured():
    """A result made from the generator's exact labels (no network), diagnosis included."""
    case = generate_synthetic_cine(seed=5, num_frames=5, shape=(96, 96, 6), subslices=1)
    return measure(case.cine, case.labels, {"device": "cpu (test)"})


@pytest.fixture
def scene(measured):
    logic = CardiacScene(slicer.vtkMRMLScene())
    logic.show_result(measured)
    return logic


def _shown_labels(logic: CardiacScene) -> np.ndarray:
    return labels_from_segmentation(logic.nodes.segmentation, logic.cine.data.shape[1:], logic.matrix)


def _set_lv_segment(logic: CardiacScene, mask: np.ndarray) -> None:
    """What a Segment Editor effect does: replace the LV segment's labelmap of the shown frame by ``mask``."""
    set_segment_mask(logic.nodes.segmentation, LV, mask, logic.matrix)


def _paint_lv(logic: CardiacScene, frame: int, n: int) -> np.ndarray:
    """Paint ``n`` background voxels nearest the LV centre into the LV cavity of ``frame``; their indices."""
    logic.set_frame(frame)
    labels = _shown_labels(logic)
    lv = labels == LV
    centre = np.argwhere(lv).mean(axis=0)
    background = np.argwhere(labels == Label.BACKGROUND)
    painted = background[np.argsort(np.linalg.norm(background - centre, axis=1), kind="stable")[:n]]
    mask = lv.copy()
    mask[tuple(painted.T)] = True
    _set_lv_segment(logic, mask)
    return painted


def _erase_lv(logic: CardiacScene, frame: int, n: int) -> np.ndarray:
    logic.set_frame(frame)
    lv = _shown_labels(logic) == LV
    erased = np.argwhere(lv)[:n]
    mask = lv.copy()
    mask[tuple(erased.T)] = False
    _set_lv_segment(logic, mask)
    return erased


def test_segmentation_edits_are_saved_into_the_frames_item(scene):
    browser = scene.cine_nodes.browser
    assert browser.GetSaveChanges(scene.nodes.segmentation_sequence)


def test_painting_the_ed_cavity_grows_lvedv_by_exactly_the_painted_volume(scene, measured):
    n, ed, es = 120, measured.ed_index, measured.es_index
    painted = _paint_lv(scene, ed, n)
    scene.set_frame(es)  # the edit survives moving to another frame and back
    scene.set_frame(ed)
    assert (_shown_labels(scene)[tuple(painted.T)] == LV).all()
    seen = []
    scene.add_listener(seen.append)
    new = scene.update_from_segmentation()
    voxel_ml = measured.cine.voxel_volume_ml
    assert new.indices["LVEDV (mL)"] - measured.indices["LVEDV (mL)"] == pytest.approx(
        n * voxel_ml, abs=0.011
    )
    edv, esv = new.indices["LVEDV (mL)"], new.indices["LVESV (mL)"]
    assert new.indices["LVEF (%)"] == pytest.approx(100 * (edv - esv) / edv, abs=0.02)
    assert new.indices["LVEF (%)"] > measured.indices["LVEF (%)"]
    assert new.diagnosis is not measured.diagnosis and "probabilities" in new.diagnosis  # recomputed
    ed_frame = measured.cine.frame_numbers[ed]
    assert new.provenance["edited_frames"] == [ed_frame]
    assert seen == [new] and scene.result is new
    # the tables and the curve plot follow, and say which frame was edited
    rows = {r["Metric"]: r["Value"] for r in table_rows(scene.nodes.indices)}
    assert rows["LVEDV"] == pytest.approx(edv)
    assert scene.nodes.indices.GetAttribute("CardiacMTL.editedFrames") == str(ed_frame)
    curves = table_rows(scene.nodes.curves)
    assert [r["Edited"] for r in curves] == [1.0 if t == ed else 0.0 for t in range(len(curves))]
    assert curves[ed]["LV (mL)"] == pytest.approx(new.volume_curve_ml["LV"][ed])
    assert scene.nodes.curve_chart.GetNthPlotSeriesNode(0).GetTableNode() is scene.nodes.curves
    assert set(scene.nodes.landmarks) == {ed, es} and all(
        scene.scene.IsNodePresent(node) for node in scene.nodes.landmarks.values()
    )
    scene.set_frame((ed + 1) % measured.cine.num_frames)  # still there after the update
    scene.set_frame(ed)
    assert (_shown_labels(scene)[tuple(painted.T)] == LV).all()


def test_erasing_on_es_shrinks_lvesv_and_edits_accumulate(scene, measured):
    ed, es = measured.ed_index, measured.es_index
    _paint_lv(scene, ed, 40)
    first = scene.update_from_segmentation()
    n = 90
    erased = _erase_lv(scene, es, n)
    scene.set_frame(ed)
    scene.set_frame(es)
    assert (_shown_labels(scene)[tuple(erased.T)] != LV).all()
    new = scene.update_from_segmentation()
    voxel_ml = measured.cine.voxel_volume_ml
    assert first.indices["LVESV (mL)"] - new.indices["LVESV (mL)"] == pytest.approx(n * voxel_ml, abs=0.011)
    assert new.indices["LVEDV (mL)"] == first.indices["LVEDV (mL)"]
    assert new.indices["LVEF (%)"] > first.indices["LVEF (%)"]
    frames = measured.cine.frame_numbers
    assert new.provenance["edited_frames"] == sorted({frames[ed], frames[es]})
    others = [t for t in range(measured.cine.num_frames) if t not in (ed, es)]
    assert [new.volume_curve_ml["LV"][t] for t in others] == [
        measured.volume_curve_ml["LV"][t] for t in others
    ]


def test_an_update_without_edits_changes_nothing(scene, measured):
    assert scene.edited_frame_indices() == []
    assert scene.update_from_segmentation() is measured


def test_an_update_before_any_result_says_what_to_do():
    with pytest.raises(CardiacError, match="Segment & diagnose"):
        CardiacScene(slicer.vtkMRMLScene()).update_from_segmentation()


def test_a_new_analysis_names_the_corrections_it_would_replace(measured):
    logic = CardiacScene(slicer.vtkMRMLScene())
    logic.show_result(measured)
    assert logic.edits_at_stake() is None
    ed, frames = measured.ed_index, measured.cine.frame_numbers
    _paint_lv(logic, ed, 30)  # not applied yet: still at stake
    assert logic.edits_at_stake() == f"the segmentation of frame(s) {frames[ed]}"
    logic.update_from_segmentation()  # applied: a new analysis would still replace it
    node = logic.nodes.landmarks[measured.es_index]
    position = np.zeros(3)
    node.GetNthControlPointPosition(0, position)
    node.SetNthControlPointPosition(0, *(position + 3.0))
    assert logic.edits_at_stake() == f"the segmentation of frame(s) {frames[ed]} and 1 moved landmark(s)"


def test_export_writes_the_segmentation_as_corrected_even_without_update(measured, tmp_path):
    import json

    import nibabel as nib

    from CardiacMTLLib.scene.study import Study

    study = Study(slicer.vtkMRMLScene())
    study.show_result(measured)
    n, ed = 120, measured.ed_index
    _paint_lv(study, ed, n)  # Segment Editor, then Export at once (no Update results)
    out = study.export(tmp_path)
    saved = json.loads((out / "indices.json").read_text())["indices"]
    voxel_ml = measured.cine.voxel_volume_ml
    assert saved["LVEDV (mL)"] - measured.indices["LVEDV (mL)"] == pytest.approx(n * voxel_ml, abs=0.011)
    assert study.result.provenance["edited_frames"] == [measured.cine.frame_numbers[ed]]  # the panel's too
    (label_file,) = (out / "segmentation").iterdir()  # one 4D label map: (columns, rows, slices, frames)
    written = np.asarray(nib.load(label_file).dataobj)[..., ed]
    assert (written == LV).sum() == (measured.labels[ed] == LV).sum() + n
    # the landmarks are exported as copies: the nodes' own storage (a scene save) is not moved into the export
    assert len(list(out.glob("landmarks_frame*.mrk.json"))) == len(study.nodes.landmarks) > 0
    assert all(node.GetStorageNode() is None for node in study.nodes.landmarks.values())
