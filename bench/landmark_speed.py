"""Time of the landmark detection for one ED+ES pair on the CPU (bar: <= 0.5 s for all landmarks).

The shipped short-axis detector derives the RV insertion points from the label maps and likely-RV maps
that segmentation has already made, so its cost is that of
:func:`CardiacMTLLib.landmarks.detect_sax_landmarks` on the ED and ES frames (which connects the
likely-RV pixels to the RV, :func:`CardiacMTLLib.segment.connect_rv_contact`, and reads the septum); the AHA segment
thickness that the points orient is timed separately. Runs on ACDC expert label maps (their one-hot
maps standing in for the probabilities) when ``../shared/data/acdc`` is present (the first ``N``
patients), else on synthetic cines. The long-axis mitral hinge detectors (the segmentation U-Net with
the hinge rule, and the VGG network) are timed per 25-frame cine (single thread).

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/landmark_speed.py [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.indices import aha_wall_thickness_mm
from CardiacMTLLib.analysis.landmarks.rv_insertion import detect_sax_landmarks
from CardiacMTLLib.io.landmarks import insertions_of_frame
from CardiacMTLLib.types import Cine

ACDC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "acdc"


def pairs(n: int):
    """``(name, labels (2, slices, rows, cols), spacing, affine)`` for ED+ES pairs."""
    if (ACDC / "patient001" / "Info.cfg").exists():
        from CardiacMTLLib.io.acdc import read_acdc_info
        from CardiacMTLLib.io.nifti import read_nifti_volume

        for folder in sorted(ACDC.glob("patient*"))[:n]:
            info = read_acdc_info(folder / "Info.cfg")
            maps = []
            for key in ("ED", "ES"):
                labels, spacing, affine = read_nifti_volume(
                    folder / f"{folder.name}_frame{int(info[key]):02d}_gt.nii.gz"
                )
                maps.append(labels.astype(np.uint8))
            yield folder.name, np.stack(maps), spacing, affine
    else:
        from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

        for seed in range(n):
            case = generate_synthetic_cine(seed=seed, num_frames=4)
            yield f"synthetic{seed}", case.labels[[0, case.es_index]], case.cine.spacing_mm, case.cine.affine


def main(n: int = 10) -> None:
    import torch

    torch.set_num_threads(1)
    detect, aha, cpu = [], [], []
    for name, labels, spacing, affine in pairs(n):
        cine = Cine(data=labels.astype(np.float32), spacing_mm=spacing, affine=affine, frame_numbers=[0, 1])
        t0, c0 = time.perf_counter(), time.process_time()
        # the likely-RV maps of one-hot "probabilities" (kept by segmentation), connected by the detection
        likely = {t: labels[t] == 1 for t in (0, 1)}
        points = detect_sax_landmarks(labels, cine, (0, 1), rv_likely=likely)
        detect.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        t1 = time.perf_counter()
        aha_wall_thickness_mm(labels[0], spacing, insertions_of_frame(points, 0))
        aha.append(time.perf_counter() - t1)
        print(
            f"{name}: {len(points)} points in {detect[-1]:.3f} s ({cpu[-1]:.3f} s CPU), "
            f"AHA segments {aha[-1]:.3f} s",
            flush=True,
        )
    print(
        f"RV insertion points of one ED+ES pair: median {np.median(detect):.3f} s, max {np.max(detect):.3f} s "
        f"wall (CPU time median {np.median(cpu):.3f} s, max {np.max(cpu):.3f} s; bar 0.5 s); "
        f"AHA 16 segments: median {np.median(aha):.3f} s"
    )
    from CardiacMTLLib.analysis.landmarks.mitral import (
        detect_mv_hinges,
        load_lax_model,
        load_lax_segmentation_model,
    )
    from CardiacMTLLib.synthetic.lax import synthetic_lax_cine

    images, _ = synthetic_lax_cine(seed=0, view="4ch", num_frames=25)
    lax = Cine(
        data=images[:, None],
        spacing_mm=(1.40625, 1.40625, 1.0),
        affine=np.eye(4),
        frame_numbers=list(range(25)),
    )
    for name, model in (("segmentation", load_lax_segmentation_model()), ("vgg", load_lax_model())):
        t0 = time.perf_counter()
        detect_mv_hinges(lax, model, name)
        print(f"mitral hinges ({name}), 25-frame long-axis cine, 1 thread: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
