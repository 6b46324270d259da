"""Correcting a segmentation: every result follows the edited label maps (``pipeline.remeasure``)."""

from __future__ import annotations

import numpy as np
import pytest

from CardiacMTLLib.pipeline import analyze, remeasure
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.types import Label


@pytest.fixture(scope="module")
def result():
    case = generate_synthetic_cine(seed=2, num_frames=6, shape=(128, 128, 8), spacing_mm=(1.8, 1.8, 9.0))
    return analyze(case.cine, device="cpu")


def _paint_into_lv(labels: np.ndarray, t: int, n: int) -> np.ndarray:
    """``n`` myocardium voxels next to the LV cavity of frame ``t`` turned into cavity."""
    edited = labels.copy()
    candidates = np.argwhere(edited[t] == Label.LV_MYOCARDIUM)[:n]
    edited[t][tuple(candidates.T)] = Label.LV_CAVITY
    return edited


def test_painting_the_ed_cavity_grows_lvedv_by_exactly_the_painted_volume(result):
    n = 200
    labels = _paint_into_lv(result.labels, result.ed_index, n)
    new = remeasure(result, labels, [result.cine.frame_numbers[result.ed_index]])
    grown = new.indices["LVEDV (mL)"] - result.indices["LVEDV (mL)"]
    assert grown == pytest.approx(n * result.cine.voxel_volume_ml, abs=0.011)  # indices are rounded to 0.01
    assert new.indices["LVEF (%)"] > result.indices["LVEF (%)"]  # the ejection fraction follows
    assert new.provenance["edited_frames"] == [result.cine.frame_numbers[result.ed_index]]
    assert new.diagnosis is not None and "probabilities" in new.diagnosis  # recomputed, not copied
    assert new.labels is not result.labels and result.indices["LVEDV (mL)"] != new.indices["LVEDV (mL)"]


def test_erasing_on_es_shrinks_lvesv_and_unedited_frames_keep_their_volumes(result):
    es = result.es_index
    labels = result.labels.copy()
    cavity = np.argwhere(labels[es] == Label.LV_CAVITY)[:150]
    labels[es][tuple(cavity.T)] = Label.BACKGROUND
    new = remeasure(result, labels, [result.cine.frame_numbers[es]])
    assert new.indices["LVESV (mL)"] == pytest.approx(
        result.indices["LVESV (mL)"] - 150 * result.cine.voxel_volume_ml, abs=0.011
    )
    others = [t for t in range(result.cine.num_frames) if t != es]
    assert [new.volume_curve_ml["LV"][t] for t in others] == [result.volume_curve_ml["LV"][t] for t in others]


def test_edits_accumulate_and_moved_landmarks_keep_their_place(result):
    from CardiacMTLLib.analysis.landmarks.edits import update_landmarks

    point = dict(result.landmarks[0])
    point["ijk"] = [point["ijk"][0] + 3.0, point["ijk"][1] - 2.0, point["ijk"][2]]
    point.pop("ras", None)
    moved = update_landmarks(result, [point])
    ed_frame = result.cine.frame_numbers[result.ed_index]
    first = remeasure(moved, _paint_into_lv(moved.labels, moved.ed_index, 50), [ed_frame])
    es_frame = result.cine.frame_numbers[result.es_index]
    second = remeasure(first, first.labels, [es_frame])
    assert second.provenance["edited_frames"] == sorted({ed_frame, es_frame})
    kept = [p for p in second.landmarks if p.get("edited")]
    assert len(kept) == 1 and kept[0]["ijk"][:2] == pytest.approx(point["ijk"][:2], abs=1e-3)


def test_labels_of_another_shape_are_refused(result):
    from CardiacMTLLib.errors import CardiacInputError

    with pytest.raises(CardiacInputError, match="shape"):
        remeasure(result, result.labels[:1], [0])
