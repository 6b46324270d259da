"""Both module files run on Slicer's own Python layer of the supported releases (5.10.0 and 5.12.3).

Each release's ``Base/Python/slicer`` (``__init__``, ``util``, ``ScriptedLoadableModule``, ``i18n``, the
``parameterNodeWrapper`` package) and ``Modules/Scripted/SampleData`` are taken at run time from the Slicer
clone named by ``SLICER_GIT_DIR`` (``git archive`` into a temporary folder; nothing of Slicer is kept in the
project), and ``module_check.py`` runs in a fresh interpreter on them: module construction, sample-data
registration and its button, widget ``setup()``, ``enter()``, the parameter node's GUI binding and its
validators, load, Segment & diagnose on the worker thread, a Segment Editor edit and Update results, Export,
``exit()``, a scene close, ``slicer.util.reloadScriptedModule``, ``cleanup()`` on unload, both self-tests,
and the panel of an older Slicer. Without ``SLICER_GIT_DIR`` it skips (CI has no Slicer clone).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("slicer", reason="slicer-core is not installed (pip install 'trame-slicer[standalone]')")

HERE = Path(__file__).resolve().parent
RELEASES = ("v5.10.0", "v5.12.3")
PATHS = ("Base/Python/slicer", "Modules/Scripted/SampleData", "CMakeLists.txt")
# what each run must have done, whatever else it checks
REQUIRED_STEPS = [
    "SampleData: the release's module constructed",
    "CardiacMTL: sample data registered when Slicer has started",
    "CardiacMTL: the Sample Data button generates the synthetic cine",
    "CardiacMTL: widget construction and setup()",
    "CardiacMTL: enter() and the parameter node (GUI <-> node, validation)",
    "CardiacMTL: Segment & diagnose on the worker thread, polled by the timer",
    "CardiacMTL: Cancel while the analysis runs keeps the shown result",
    "CardiacMTL: Segment Editor paints 10 voxels into ED's LV, Update results",
    "CardiacMTL: a landmark dragged refreshes the panel",
    "CardiacMTL: Segment & diagnose again after corrections asks first",
    "CardiacMTL: a scene closed while an analysis runs stops it",
    "CardiacMTL: Export into a folder that has a user's file",
    "CardiacMTL: Export DICOM of a cine that is not DICOM",
    "CardiacMTL: a DICOM study picked with the file button, analysed, Export DICOM",
    "CardiacMTL: strain table, curves and bull's-eye after the analysis",
    "CardiacAtlas: widget construction and setup()",
    "CardiacAtlas: enter() and the parameter node (GUI <-> node, validation)",
    "CardiacAtlas: fit the LV model to the CardiacMTL result",
] + [
    f"{name}: {step}"
    for name in ("CardiacMTL", "CardiacAtlas")
    for step in (
        "exit() disconnects the GUI",
        "scene close while entered (StartClose/EndClose observers)",
        "reload (slicer.util.reloadScriptedModule)",
        "cleanup() when the module is unloaded",
        "developer mode, the Reload button of Slicer's Reload & Test section",
        "self-test (Slicer's runTest)",
        "an older Slicer (5.8) gets the message in the panel",
    )
]


def _extract(release: str, folder: Path) -> Path:
    git_dir = os.environ.get("SLICER_GIT_DIR")
    if not git_dir or not Path(git_dir).is_dir():
        pytest.skip(
            "Slicer's sources not available: set SLICER_GIT_DIR to a clone of github.com/Slicer/Slicer"
        )
    archive = subprocess.run(["git", "--git-dir", git_dir, "archive", release, *PATHS], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"{release} not in {git_dir}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_both_modules_run_on_the_releases_python_layer(release, tmp_path):
    sources = _extract(release, tmp_path / "slicer")
    report_file = tmp_path / "report.json"
    (tmp_path / "tmp").mkdir()  # the run's export folders and caches stay in the test's folder
    run = subprocess.run(
        [sys.executable, str(HERE / "module_check.py"), str(sources), str(report_file)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path / "tmp")},
    )
    assert report_file.is_file(), run.stderr[-3000:]
    report = json.loads(report_file.read_text())
    assert report["slicer_version"] == release[1:].rsplit(".", 1)[0]
    files = report["slicer_files"]
    for name in (
        "slicer",
        "slicer.util",
        "slicer.ScriptedLoadableModule",
        "slicer.parameterNodeWrapper.wrapper",
    ):
        assert files.get(name, "").startswith("Base/Python/slicer/"), f"{name} was not the release's: {files}"
    assert files.get("SampleData") == "Modules/Scripted/SampleData/SampleData.py"
    problems = [
        f"{step['step']}: {check['check']} ({check['detail']})"
        for step in report["steps"]
        for check in step["checks"]
        if not check["ok"]
    ] + [f"{step['step']}:\n{step['error']}" for step in report["steps"] if "error" in step]
    assert not problems, "\n".join(problems)
    ran = [step["step"] for step in report["steps"]]
    assert not set(REQUIRED_STEPS) - set(ran), sorted(set(REQUIRED_STEPS) - set(ran))
    assert sum(len(step["checks"]) for step in report["steps"]) >= 80
