"""What the strain nodes (table, curve plot, bull's-eye image) add to showing a result in the Slicer scene.

    .venv/bin/python bench/slicer_strain_nodes.py [--repeats 5]

Shows the result of the demo cine (20 frames, measured on the generator's exact labels, no network) on a
slicer-core scene with and without ``strain_nodes``, alternating the two in one run, and prints the median
seconds of each and their ratio; then the same for "Update results" after a one-voxel correction (the
strain is recomputed, so the bull's-eye is drawn again).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from CardiacMTLLib.pipeline import measure
from CardiacMTLLib.scene.cardiac import CardiacScene
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.types import Label


def main() -> int:
    import slicer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    case = generate_synthetic_cine(seed=0)
    result = measure(case.cine, case.labels, {"device": "cpu (bench)"})
    shown = {False: [], True: []}
    updated = {False: [], True: []}
    for repeat in range(args.repeats + 1):  # the first round warms imports and matplotlib up
        for strain_nodes in (False, True):
            logic = CardiacScene(slicer.vtkMRMLScene(), strain_nodes=strain_nodes)
            t0 = time.perf_counter()
            logic.show_result(result)
            t1 = time.perf_counter()
            labels = logic.labels_from_scene()
            free = np.argwhere(labels[result.ed_index] == Label.BACKGROUND)[0]
            labels[(result.ed_index, *free)] = Label.LV_CAVITY
            _paint(slicer, logic, logic.nodes.segmentation, labels[result.ed_index])  # ED is the shown frame
            t2 = time.perf_counter()
            logic.update_from_segmentation()
            t3 = time.perf_counter()
            if repeat:
                shown[strain_nodes].append(t1 - t0)
                updated[strain_nodes].append(t3 - t2)
    for name, times in (("show_result", shown), ("update_from_segmentation", updated)):
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"{name}: with strain nodes {on:.3f} s, without {off:.3f} s, ratio {on / off:.2f} (median of {args.repeats})"
        )
    return 0


def _paint(slicer, logic, segmentation, frame_labels) -> None:
    """Replace the LV segment of one frame's segmentation node by ``frame_labels == LV`` (Segment Editor's way)."""
    from CardiacMTLLib.scene.nodes import image_data_from_array, vtk_matrix
    from CardiacMTLLib.scene.segmentation import LABEL_SEGMENT_IDS

    image = slicer.vtkOrientedImageData()
    image.ShallowCopy(image_data_from_array((frame_labels == Label.LV_CAVITY).astype(np.uint8)))
    image.SetImageToWorldMatrix(vtk_matrix(logic.matrix))
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        image,
        segmentation,
        LABEL_SEGMENT_IDS[int(Label.LV_CAVITY)],
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE,
    )


if __name__ == "__main__":
    raise SystemExit(main())
