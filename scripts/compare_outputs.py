"""Compare two result folders of ``cardiac-mtl analyze`` (or two trees of them): same keys, same values.

    .venv/bin/python scripts/compare_outputs.py BEFORE AFTER

``indices.json``, ``indices.csv`` and ``landmarks.json`` are compared key by key; run times (keys ending in
``_s``) and paths of the input are expected to differ and are left out. Exit status 1 lists every
difference. Used to show that a refactoring leaves the output files unchanged; a deliberate change of the
schema carries a ``schema_version`` and is listed by this script too.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

FILES = ("indices.json", "indices.csv", "landmarks.json")
IGNORED_KEYS = {"input", "provenance: input", "path", "source"}


def _ignored(key: str) -> bool:
    key = str(key)
    return key in IGNORED_KEYS or key.endswith("_s") or key.endswith("_s)")


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if not _ignored(k):
                yield from _flatten(v, f"{prefix}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _read(path: Path) -> dict:
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {
            f"row{i}": {k: v for k, v in row.items() if not _ignored(k.split(": ")[-1])}
            for i, row in enumerate(rows)
        }
    return json.loads(path.read_text())


def compare(before: Path, after: Path) -> list[str]:
    problems = []
    for name in FILES:
        for a in sorted(before.rglob(name)):
            b = after / a.relative_to(before)
            if not b.is_file():
                problems.append(f"{b}: missing")
                continue
            left, right = dict(_flatten(_read(a))), dict(_flatten(_read(b)))
            for key in sorted(set(left) | set(right)):
                if key not in right:
                    problems.append(f"{b}: {key} missing")
                elif key not in left:
                    problems.append(f"{b}: {key} new")
                elif left[key] != right[key]:
                    problems.append(f"{b}: {key}: {left[key]!r} -> {right[key]!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    compared = sorted(p.relative_to(args.before) for name in FILES for p in args.before.rglob(name))
    problems = compare(args.before, args.after)
    for line in problems:
        print(line)
    print(f"{len(compared)} files compared, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
