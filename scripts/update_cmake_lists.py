"""Regenerate the explicit file lists of the Slicer modules' CMakeLists.txt from what is on disk.

    .venv/bin/python scripts/update_cmake_lists.py           # rewrite the lists
    .venv/bin/python scripts/update_cmake_lists.py --check   # exit 1 and show the diff if out of date

``slicerMacroBuildScriptedModule`` installs only the files it is given, so a Lib file missing from
``MODULE_PYTHON_SCRIPTS`` works from the source tree and fails in a packaged extension. The lists live
between ``# BEGIN GENERATED FILE LIST`` and ``# END GENERATED FILE LIST`` in ``CardiacMTL/CMakeLists.txt``
and ``CardiacAtlas/CMakeLists.txt``; everything outside the markers is left as written. Standard library
only, so it runs before any set-up.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN = "# BEGIN GENERATED FILE LIST"
END = "# END GENERATED FILE LIST"
# module folder -> its Lib package (a folder inside the module folder)
MODULES = {"CardiacMTL": "CardiacMTLLib", "CardiacAtlas": "CardiacAtlasLib"}
# resources relative to the module folder; "{lib}" is the module's Lib package
RESOURCE_PATTERNS = (
    "Resources/Icons/*.png",
    "Resources/UI/*.ui",
    "{lib}/weights/*.json",  # the catalogue of shipped models, with their checksums
    "{lib}/weights/*/*.pt",
    "{lib}/weights/*/*.json",
    "{lib}/weights/*/*.md",
    "{lib}/weights/*/*.csv",  # the feature table the diagnosis ensemble is fitted on at run time
    "{lib}/weights/*/network.xml",  # a network converted for OpenVINO (models/runtime.py)
    "{lib}/weights/*/network.bin",
    "{lib}/weights/*/network-int8.xml",  # ... and quantised to int8
    "{lib}/weights/*/network-int8.bin",
)
SKIPPED_PARTS = {"__pycache__"}
# packages of a Lib that Slicer never installs: inference never imports them (architecture rule 2)
TRAINING_ONLY_PACKAGES = {"training", "datasets", "evaluation"}


class FileListError(Exception):
    """A CMakeLists.txt without its markers, or a file name CMake cannot list."""


def _relative(paths, module_dir: Path) -> list[str]:
    names = []
    for path in paths:
        relative = path.relative_to(module_dir)
        if SKIPPED_PARTS.intersection(relative.parts) or not path.is_file():
            continue
        name = relative.as_posix()
        if any(c.isspace() for c in name) or ";" in name or '"' in name:
            raise FileListError(f"{path}: file names in a CMake list must not contain spaces, ';' or quotes")
        names.append(name)
    return sorted(set(names))


def module_files(module: str, root: Path = REPO_ROOT) -> tuple[list[str], list[str]]:
    """(scripts, resources) of one module, relative to its folder: the module file first, then the Lib."""
    module_dir, lib = root / module, MODULES[module]
    sources = [
        p
        for p in (module_dir / lib).rglob("*.py")
        if p.relative_to(module_dir / lib).parts[0] not in TRAINING_ONLY_PACKAGES
    ]
    scripts = [f"{module}.py"] + _relative(sources, module_dir)
    resources: list[str] = []
    for pattern in RESOURCE_PATTERNS:
        resources += _relative(module_dir.glob(pattern.format(lib=lib)), module_dir)
    return scripts, list(dict.fromkeys(resources))


def generated_block(scripts: list[str], resources: list[str]) -> str:
    lines = [f"{BEGIN} (scripts/update_cmake_lists.py; do not edit by hand)", "set(MODULE_PYTHON_SCRIPTS"]
    lines += [f"  {name}" for name in scripts]
    lines += ["  )", "", "set(MODULE_PYTHON_RESOURCES"]
    lines += [f"  {name}" for name in resources]
    lines += ["  )", END]
    return "\n".join(lines)


def updated_text(text: str, block: str, cmake_path: Path) -> str:
    """``text`` with the lines from the BEGIN marker to the END marker replaced by ``block``."""
    lines = text.splitlines()
    begins = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip().startswith(END)]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise FileListError(
            f"{cmake_path}: expected one '{BEGIN}' line followed by one '{END}' line, "
            f"found {len(begins)} and {len(ends)}"
        )
    new_lines = lines[: begins[0]] + block.splitlines() + lines[ends[0] + 1 :]
    return "\n".join(new_lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a list is out of date"
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)

    stale = []
    for module in MODULES:
        cmake_path = args.root / module / "CMakeLists.txt"
        try:
            text = cmake_path.read_text()
            new_text = updated_text(text, generated_block(*module_files(module, args.root)), cmake_path)
        except (OSError, FileListError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        if new_text == text:
            continue
        stale.append(cmake_path)
        if args.check:
            name = cmake_path.relative_to(args.root).as_posix()
            diff = difflib.unified_diff(
                text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"{name} (as written)",
                tofile=f"{name} (from disk)",
            )
            sys.stdout.writelines(diff)
        else:
            cmake_path.write_text(new_text)
            print(f"updated {cmake_path}")
    if args.check and stale:
        print(f"\n{len(stale)} CMakeLists.txt out of date; run: python scripts/update_cmake_lists.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
