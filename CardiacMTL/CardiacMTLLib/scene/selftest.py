"""The desktop module's self-test (Slicer's generic tests, the module's Reload & Test), Qt-free so that the
same checks run on slicer-core in the project's tests: the generated demo cine analysed in the background
becomes nodes and results, and a Segment Editor edit of ED's LV comes back through Update results."""

from __future__ import annotations

import numpy as np

from CardiacMTLLib.scene.nodes import table_rows
from CardiacMTLLib.scene.segmentation import labels_from_segmentation, set_segment_mask
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.types import Label

# the generated cine's LV cavity, segmented by the shipped network, within this share of its true volume
LV_VOLUME_TOLERANCE = 0.15


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"self-test: {what}")


def check_analysis_round_trip(study, device: str = "auto") -> None:
    """Analyse a generated 4-frame cine in ``study`` (a :class:`~CardiacMTLLib.scene.study.Study` on the
    scene), show it, paint ten voxels into ED's LV and update; raises ``AssertionError`` naming what failed."""
    case = generate_synthetic_cine(seed=1, num_frames=4, shape=(128, 128, 6))
    study.load_cine(case.cine, name="synthetic cine")
    result = study.start_analysis(device=device).wait().result_or_raise()
    study.show_result(result)
    _check(bool((study.labels_from_scene() == result.labels).all()), "the segmentation nodes hold the result")
    found, true = ((labels == Label.LV_CAVITY).sum() for labels in (result.labels, case.labels))
    _check(abs(found - true) / true < LV_VOLUME_TOLERANCE, f"LV cavity {found} voxels against {true}")
    _check("LVEF" in {row["Metric"] for row in table_rows(study.nodes.indices)}, "LVEF in the indices table")
    study.set_frame(result.ed_index)
    shape = study.cine.data.shape[1:]
    lv = labels_from_segmentation(study.nodes.segmentation, shape, study.matrix) == Label.LV_CAVITY
    painted = np.argwhere(~lv)[:10]
    lv[tuple(painted.T)] = True
    set_segment_mask(study.nodes.segmentation, Label.LV_CAVITY, lv, study.matrix)  # Segment Editor's paint
    grown = study.update_from_segmentation().indices["LVEDV (mL)"] - result.indices["LVEDV (mL)"]
    expected = 10 * case.cine.voxel_volume_ml
    _check(abs(grown - expected) < 0.011, f"LVEDV grew by {grown:.3f} mL after painting {expected:.3f} mL")
