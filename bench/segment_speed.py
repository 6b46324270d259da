"""Time ``segment`` end to end (read NIfTI, pre-process, network, softmax resampling, clean-up, write)
per ACDC volume, with the model loaded once (its load time is reported separately).

    .venv/bin/python bench/segment_speed.py [--data ../shared/data/acdc] [--device cpu] [--repeats 1]

Uses the validation patients recorded in the shipped model's manifest. Prints seconds per volume
(median, mean, max) and slices per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from CardiacMTLLib.analysis.segment import segment_volume
from CardiacMTLLib.datasets.acdc import load_annotated_frames
from CardiacMTLLib.io.cine import read_volume
from CardiacMTLLib.io.nifti import write_label_map
from CardiacMTLLib.models.registry import load_model


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(root.parent / "shared" / "data" / "acdc"))
    parser.add_argument("--model", default=None, help="model folder (default: shipped)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: all cores)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        print(f"ACDC data not found at {args.data}", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.model, device=args.device, precision=args.precision)
    load_s = time.perf_counter() - t0
    patients = model.manifest["training"]["validation_patients"]
    files = [img for p in patients for _, img, _ in load_annotated_frames(Path(args.data), p)]
    # warm-up: the first call initialises oneDNN kernels
    image, spacing, affine = read_volume(files[0])
    segment_volume(model, image, spacing)
    times, slices = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for path in files:
                t = time.perf_counter()
                image, spacing, affine = read_volume(path)
                labels = segment_volume(model, image, spacing)
                write_label_map(
                    labels, affine, Path(tmp) / f"{path.name.split('.')[0]}_seg.nii.gz", spacing_mm=spacing
                )
                if model.device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
                slices += image.shape[0]
    print(f"device: {model.device_text}; model {model.model_id} loaded in {load_s:.2f} s")
    print(f"{len(times)} volumes ({len(patients)} validation patients, ED+ES), {slices} slices")
    print(
        f"seconds per volume: median {statistics.median(times):.3f}, mean {statistics.mean(times):.3f}, "
        f"max {max(times):.3f}; slices per second: {slices / sum(times):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
