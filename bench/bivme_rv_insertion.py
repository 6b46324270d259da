"""RV insertion points of the segmentation-derived detector against biv-me's RV_INSERT guide points.

Segments the biv-me short-axis DICOM cine with the shipped U-Net, derives the RV insertion points on every
frame and slice as ``analyze`` does (``detect_sax_landmarks`` with the network's RV contact masks), and compares them with the ``RV_INSERT`` guide points of the same phase and slice (biv-me's
own example output for this study: a good reference, not an independent expert reading). The guide points
carry no anterior/inferior name, so each detected pair is matched to the guide pair in the better of the two
assignments. Usage: ``python bench/bivme_rv_insertion.py [DICOM_SAX_FOLDER GUIDEPOINT_FOLDER]``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.landmarks.rv_insertion import detect_sax_landmarks
from CardiacMTLLib.analysis.segment import segment_cine
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.models.registry import load_model

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bivme_patient1"


def guide_points(folder: Path, contour: str) -> dict[int, list[np.ndarray]]:
    """``{time frame: [LPS points]}`` of one contour type from the GPFile_*.txt files."""
    out: dict[int, list[np.ndarray]] = {}
    for path in sorted(folder.glob("GPFile_*.txt")):
        t = int(path.stem.split("_")[1])
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) > 4 and parts[3] == contour:
                out.setdefault(t, []).append(np.array([float(v) for v in parts[:3]]))
    return out


def main(argv: list[str]) -> dict:
    dicom = Path(argv[0]) if argv else ROOT / "dicom"
    gp_dir = Path(argv[1]) if len(argv) > 1 else ROOT / "guidepoints"
    cine = read_cine(dicom)
    model = load_model(device="cpu")
    t0 = time.perf_counter()
    rv_likely: dict = {}
    labels = segment_cine(model, cine, rv_likely=rv_likely)
    print(f"segmented {cine.data.shape} in {time.perf_counter() - t0:.1f} s")
    inverse = np.linalg.inv(cine.affine)
    spacing = np.array(cine.spacing_mm[:2])
    errors, missing, off_plane = [], 0, []
    for t, points in sorted(guide_points(gp_dir, "RV_INSERT").items()):
        if t >= cine.num_frames:
            continue
        by_slice: dict[int, list[np.ndarray]] = {}
        for lps in points:
            ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
            ijk = (inverse @ ras)[:3]
            k = int(round(ijk[2]))
            off_plane.append(abs(ijk[2] - k) * cine.spacing_mm[2])
            by_slice.setdefault(k, []).append(ijk)
        found = {}
        for p in detect_sax_landmarks(labels, cine, [t], rv_likely):
            found.setdefault(p["slice"], []).append(np.array(p["ijk"]))
        for k, truth in by_slice.items():
            if len(truth) != 2:
                continue
            if k not in found:
                missing += 2
                continue
            a, b = found[k]
            pairs = [(a, truth[0]), (b, truth[1])], [(a, truth[1]), (b, truth[0])]
            best = min(pairs, key=lambda pp: sum(np.hypot(*((p - q)[:2] * spacing)) for p, q in pp))
            errors += [float(np.hypot(*((p - q)[:2] * spacing))) for p, q in best]
    e = np.array(errors)
    summary = {
        "data": str(dicom),
        "reference": "biv-me RV_INSERT guide points (biv-me's example output, not an independent reading)",
        "frames": cine.num_frames,
        "points_compared": int(e.size),
        "points_missed": missing,
        "median_mm": round(float(np.median(e)), 2),
        "p90_mm": round(float(np.percentile(e, 90)), 2),
        "max_mm": round(float(e.max()), 2),
        "guide_points_off_slice_plane_max_mm": round(float(max(off_plane)), 3),
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
