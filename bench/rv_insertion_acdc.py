"""RV insertion points of the shipped detector on the ACDC validation patients, against expert-label truth.

The issue's bars: median error at most 3 mm, 90th percentile at most 6 mm. Truth: the ends of the stretch of
the LV epicardium that the RV touches, derived from the expert labels of the ED and ES frames
(``training.rv_landmarks.truth_by_slice``). The detector runs as ``analyze`` runs it: the shipped U-Net's
segmentation of the whole volume and its likely-RV pixels, read by ``landmarks.detect_sax_landmarks``.
Slices with truth where the detector finds no points count as missed, not as errors. Patients: the
validation patients of the segmentation model's manifest (the network never trained on them).

    .venv/bin/python bench/rv_insertion_acdc.py [--data ../shared/data/acdc] [--model MODEL_DIR] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    from CardiacMTLLib.datasets.acdc import acdc_split
    from CardiacMTLLib.models.registry import MANIFEST, WEIGHTS_DIR
    from CardiacMTLLib.training.rv_landmarks import compare_detectors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--model", default=str(WEIGHTS_DIR / "acdc_unet2d"), help="segmentation model folder")
    parser.add_argument("--out", help="write the per-volume errors and the summary here (JSON)")
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: no ACDC training folder")
    split = acdc_split(args.data, from_manifest=Path(args.model) / MANIFEST)
    result = compare_detectors(args.data, split.validation, segmentation_model=args.model)
    summary = result["summary"]
    summary.pop("network (VGG16-style regression)", None)
    summary["segmentation model"] = args.model
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
