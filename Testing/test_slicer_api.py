"""The module files against Slicer's own Python layer at the supported releases: every ``slicer.util.X`` and
``slicer.X`` name they use exists there (read from Slicer's sources, nothing of them copied here).

The sources come from a clone of github.com/Slicer/Slicer named by ``SLICER_GIT_DIR`` (a bare clone will do;
its tags are read with ``git show``); without one the test skips, as in CI, which has no network.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULE_FILES = [REPO_ROOT / "CardiacMTL" / "CardiacMTL.py", REPO_ROOT / "CardiacAtlas" / "CardiacAtlas.py"]
RELEASES = ("v5.10.0", "v5.12.3")
UTIL = "Base/Python/slicer/util.py"
# names the application adds to ``slicer`` at run time (C++ wrapped classes and singletons), not in util.py
APPLICATION_NAMES = {"app", "mrmlScene", "modules", "util"}


def _git_dir() -> Path:
    git_dir = os.environ.get("SLICER_GIT_DIR")
    if not git_dir or not Path(git_dir).is_dir():
        pytest.skip(
            "Slicer's sources not available: set SLICER_GIT_DIR to a clone of github.com/Slicer/Slicer"
        )
    return Path(git_dir)


def _source(release: str, path: str) -> str:
    shown = subprocess.run(
        ["git", "--git-dir", str(_git_dir()), "show", f"{release}:{path}"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        pytest.skip(f"{release}:{path} not in {_git_dir()}: {shown.stderr.strip()}")
    return shown.stdout


def _top_level_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _used(path: Path, prefix: str) -> set[str]:
    """``X`` for every ``<prefix>.X`` in the module file (``prefix`` ``slicer`` or ``slicer.util``)."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == prefix
    }


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda p: p.name)
def test_every_slicer_util_name_the_module_uses_exists_in_the_release(module_file, release):
    util = _top_level_names(_source(release, UTIL))
    used = _used(module_file, "slicer.util")
    assert used, f"{module_file.name} uses no slicer.util name (the check would prove nothing)"
    assert not used - util, f"{module_file.name} uses slicer.util.{sorted(used - util)}, absent in {release}"


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda p: p.name)
def test_every_slicer_name_the_module_uses_exists_in_the_release(module_file, release):
    """``slicer.X``: the application's singletons, a wrapped MRML class (its C++ header in that release) or
    a submodule of Base/Python/slicer."""
    listed = subprocess.run(
        ["git", "--git-dir", str(_git_dir()), "ls-tree", "-r", "--name-only", release],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    headers = {Path(p).stem for p in listed if p.endswith(".h")}
    python = {Path(p).stem for p in listed if p.startswith("Base/Python/slicer/")}
    for name in sorted(_used(module_file, "slicer") - APPLICATION_NAMES):
        assert name in headers or name in python or re.fullmatch(r"vtk\w+", name) and name in headers, (
            f"{module_file.name}: slicer.{name} is neither a class nor a module of Slicer {release}"
        )


@pytest.mark.parametrize("release", RELEASES)
def test_the_sample_data_and_module_bases_the_modules_use_exist(release):
    sample_data = _source(release, "Modules/Scripted/SampleData/SampleData.py")
    assert "def registerCustomSampleDataSource" in sample_data
    keywords = set(
        re.findall(r"(\w+)=", sample_data.split("def registerCustomSampleDataSource", 1)[1][:2000])
    )
    assert {
        "category",
        "sampleName",
        "uris",
        "fileNames",
        "nodeNames",
        "thumbnailFileName",
        "customDownloader",
    } <= keywords
    scripted = _top_level_names(_source(release, "Base/Python/slicer/ScriptedLoadableModule.py"))
    assert {
        "ScriptedLoadableModule",
        "ScriptedLoadableModuleWidget",
        "ScriptedLoadableModuleLogic",
    } <= scripted
    folder = "Base/Python/slicer/parameterNodeWrapper"
    listed = subprocess.run(
        ["git", "--git-dir", str(_git_dir()), "ls-tree", "--name-only", f"{release}:{folder}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    wrapper = set().union(
        *(_top_level_names(_source(release, f"{folder}/{f}")) for f in listed if f.endswith(".py"))
    )
    assert {"parameterNodeWrapper", "Choice", "WithinRange"} <= wrapper, f"{release}: {sorted(wrapper)[:20]}"
