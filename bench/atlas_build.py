"""How long ``cardiac-atlas build`` takes on 1,000 synthetic ED+ES LV shapes (bar: 5 s).

    .venv/bin/python bench/atlas_build.py [--cases 1000] [--repeats 3] [--no-end-to-end]

The shapes have the CAP mesh's size (1,682 points per phase, ED+ES concatenated: 10,092 coordinates),
four known modes, noise and a random pose each. Prints the best of ``--repeats`` wall times of
``build_atlas`` (generalised Procrustes + PCA, in memory), then of the whole command on fit folders in a
temporary directory (reading 2 VTK files per case, writing the atlas folder with meshes and modes.png).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from CardiacAtlasLib.atlas import build_atlas
from CardiacAtlasLib.synthetic import sample_shapes, synthetic_shape_model, write_fit_folders
from CardiacMTLApps.cli.atlas import main as atlas_cli

BAR_S = 5.0


def best_of(repeats: int, action) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-end-to-end", action="store_true", help="time the in-memory build only")
    args = parser.parse_args()
    model = synthetic_shape_model()
    shapes, _ = sample_shapes(model, args.cases, seed=0)
    case_ids = [f"case_{i:04d}" for i in range(args.cases)]
    print(f"{args.cases} shapes of {shapes.shape[1]} phases x {shapes.shape[2]} points")

    def in_memory():
        build_atlas(shapes, case_ids, model.faces_endo, model.faces_epi, model.n_endo)

    seconds = best_of(args.repeats, in_memory)
    print(f"build_atlas (Procrustes + PCA, in memory): {seconds:.2f} s (bar {BAR_S:.0f} s)")
    if not args.no_end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            folders = write_fit_folders(model, shapes, Path(tmp) / "fits")
            command = ["build", *map(str, folders), "--out", str(Path(tmp) / "atlas")]
            seconds = best_of(args.repeats, lambda: atlas_cli(command))
        print(f"cardiac-atlas build (read {2 * args.cases} VTK files, write the atlas): {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
