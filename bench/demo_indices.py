"""Compare the indices of ``cardiac-mtl demo`` (the generated cine with exact ground truth) between this
checkout and an older one, index by index, as relative differences.

    .venv/bin/python bench/demo_indices.py --base /tmp/speed-base [--base-python PYTHON] [--tolerance 0.5]
        [--precision auto] [--both fp32]

Each checkout runs the demo in a fresh process (``--seed`` as given, default 0) into a temporary folder;
the script prints every numeric index of ``analysis/indices.json`` of both, the relative difference in %,
the largest one and whether it is within ``--tolerance`` % (the bar: 0.5 %). ``--precision`` is the
current checkout's (``int8``: its quantised network); the base runs in its own ``auto``. ``--both
fp32`` instead runs both checkouts' ``analyze`` of the demo's generated cine in fp32 (``bf16`` alike):
on a CPU with bf16, ``auto`` is bf16 in both, whose differing kernels move the thin walls a little.
``--floor`` adds each checkout's own ``analyze`` of that cine in fp32 against bf16: how far its indices
move with its precision alone (the base's spread is the floor under any bf16 comparison with it).

A difference of one unit in the last decimal the files write (0.65 against 0.66 g/mL) is the rounding of
the written values, not a change of the measurement: it is marked ``rounding`` and left out of the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cli(python: str, tree: Path, argv: list[str]) -> float:
    """Run ``cardiac-mtl ARGV`` of one checkout in a fresh process; its seconds."""
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{tree / 'CardiacMTL'}{os.pathsep}{tree / 'CardiacAtlas'}"
    env["TQDM_DISABLE"] = "1"
    code = f"import sys; from CardiacMTLApps.cli.mtl import main; sys.exit(main({argv!r}))"
    t = time.perf_counter()
    done = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, cwd=str(tree))
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{tree}: cardiac-mtl {argv[0]} failed:\n{done.stderr[-3000:]}")
    return seconds


def demo_indices(
    python: str, tree: Path, seed: int, out: Path, precision: str | None = None
) -> tuple[dict, float]:
    """``cardiac-mtl demo`` of one checkout: its indices and seconds."""
    argv = ["demo", "--out", str(out), "--seed", str(seed)] + (
        ["--precision", precision] if precision else []
    )
    seconds = _cli(python, tree, argv)
    return json.loads((out / "analysis" / "indices.json").read_text())["indices"], seconds


def analyze_indices(python: str, tree: Path, cine: Path, out: Path, precision: str) -> tuple[dict, float]:
    """``cardiac-mtl analyze CINE --precision PRECISION`` of one checkout: its indices and seconds."""
    seconds = _cli(python, tree, ["analyze", str(cine), "--out", str(out), "--precision", precision])
    return json.loads((out / "indices.json").read_text())["indices"], seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the older checkout of the project")
    parser.add_argument("--base-python", default=sys.executable, help="the Python of --base")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.5, help="largest relative difference, %%")
    parser.add_argument(
        "--precision", choices=["auto", "fp32", "bf16", "int8"], help="the current checkout's"
    )
    parser.add_argument(
        "--both",
        metavar="PRECISION",
        choices=["fp32", "bf16"],
        help="instead: both checkouts' `analyze` of the demo's generated cine, each in this precision "
        "(the base's demo has no --precision; on a bf16 CPU its auto is bf16)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also: each checkout's own analyze of the demo's cine in fp32 against bf16 (its precision's spread)",
    )
    args = parser.parse_args()
    base_tree = Path(args.base).resolve()
    floor = None
    with tempfile.TemporaryDirectory() as tmp:
        cine = Path(tmp) / "demo" / "input" / "synthetic_cine.nii.gz"
        if args.both or args.floor:
            demo_indices(sys.executable, ROOT, args.seed, Path(tmp) / "demo")
        if args.both:
            base, base_s = analyze_indices(args.base_python, base_tree, cine, Path(tmp) / "base", args.both)
            current, current_s = analyze_indices(sys.executable, ROOT, cine, Path(tmp) / "current", args.both)
        else:
            base, base_s = demo_indices(args.base_python, base_tree, args.seed, Path(tmp) / "base")
            current, current_s = demo_indices(
                sys.executable, ROOT, args.seed, Path(tmp) / "current", args.precision
            )
        if args.floor:
            floor = {
                name: tuple(
                    analyze_indices(python, tree, cine, Path(tmp) / f"floor-{name}-{p}", p)[0]
                    for p in ("fp32", "bf16")
                )
                for name, python, tree in (
                    ("base", args.base_python, base_tree),
                    ("current", sys.executable, ROOT),
                )
            }
    what = f"analyze of the demo's cine --precision {args.both}" if args.both else "demo"
    print(f"cardiac-mtl {what} --seed {args.seed}: base {base_s:.1f} s, current {current_s:.1f} s")
    worst = compare(base, current, ("base", "current"))
    verdict = "within" if worst[0] <= args.tolerance else "NOT within"
    print(f"largest difference {worst[0]:.3f} % ({worst[1]}): {verdict} {args.tolerance} %")
    for name, (fp32, bf16) in (floor or {}).items():
        print(f"\n{name}: its own analyze of the demo's cine, fp32 against bf16:")
        spread = compare(fp32, bf16, (f"{name} fp32", f"{name} bf16"))
        print(f"largest difference {spread[0]:.3f} % ({spread[1]}): {name}'s precision alone")
    return 0


def decimals(value: float) -> int:
    """The decimals a file's value was written with (``repr`` of a float rounded to a few decimals)."""
    text = repr(float(value))
    return 0 if "e" in text or text.endswith(".0") else len(text.split(".")[1])


def compare(first: dict, second: dict, names: tuple[str, str]) -> tuple[float, str | None]:
    """Print every numeric index of both, the relative difference in %, and return the largest one
    (differences within the written values' rounding left out) with its index."""
    print(f"  {'index':<34}{names[0]:>12}{names[1]:>12}{'difference %':>14}")
    worst = (0.0, None)
    for key, value in first.items():
        other = second.get(key)
        if (
            not isinstance(value, int | float)
            or not isinstance(other, int | float)
            or isinstance(value, bool)
        ):
            continue
        relative = 0.0 if value == other else 100.0 * abs(other - value) / max(abs(value), 1e-9)
        unit = 10.0 ** -max(decimals(value), decimals(other))
        rounding = 0.0 < abs(other - value) <= unit * (1 + 1e-9)
        if not rounding:
            worst = max(worst, (relative, key), key=lambda w: w[0])
        note = "  rounding" if rounding else ""
        print(f"  {key:<34}{value:>12.3f}{other:>12.3f}{relative:>14.3f}{note}")
    return worst


if __name__ == "__main__":
    sys.exit(main())
