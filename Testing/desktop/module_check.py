"""Run both module files on Slicer's own Python layer of one release, without a GUI, and report what ran.

``python module_check.py SLICER_SOURCES REPORT.json`` where ``SLICER_SOURCES`` holds ``Base/Python/slicer``
and ``Modules/Scripted/SampleData`` of a Slicer release (extracted from a clone by the test, never kept in
the project). ``import slicer`` then runs that release's ``slicer/__init__.py`` (its kits: the slicer-core
wheel's MRML libraries), and ``slicer.util``, ``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper``
and ``SampleData`` are the release's files, on a real MRML scene with real module logics (sequences,
segmentations, volumes, plots, slice logics). Only the widgets and ``slicer.app`` are stand-ins
(``gui_standins.py``). Each step is recorded with what it checked; a failing step records its traceback and
the run goes on, so one report lists every problem.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ANALYSIS_TIMEOUT_S = 600


class Report:
    def __init__(self):
        self.steps: list[dict] = []

    def step(self, name: str):
        report = self

        class Step:
            def __enter__(self):
                self.checks, self.t0 = [], time.perf_counter()
                return self

            def check(self, what: str, ok: bool, detail=""):
                self.checks.append({"check": what, "ok": bool(ok), "detail": str(detail)[:300]})

            def __exit__(self, kind, error, tb):
                entry = {
                    "step": name,
                    "checks": self.checks,
                    "seconds": round(time.perf_counter() - self.t0, 2),
                }
                if error is not None:
                    entry["error"] = "".join(traceback.format_exception(kind, error, tb))[-3000:]
                report.steps.append(entry)
                return True  # record and go on with the next step

        return Step()


def start_slicer(sources: Path, minor_version: int | None = None):
    """Import the release's ``slicer`` package on slicer-core and give it a scene, an app and module logics."""
    sys.path[:0] = [
        str(sources / "Base" / "Python"),
        str(sources / "Modules" / "Scripted" / "SampleData"),
        str(HERE),
    ]
    import app_standins
    import gui_standins as gs

    gs.install_qt_and_ctk()
    kits = sources / "Base" / "Python" / "slicer" / "kits.py"  # Slicer's build writes it from kits.py.in
    kits.write_text('available_kits = ["slicer_core"]\n')
    import slicer

    version = (sources / "CMakeLists.txt").read_text() if (sources / "CMakeLists.txt").is_file() else ""
    major = int(_cmake_value(version, "Slicer_VERSION_MAJOR") or 5)
    minor = (
        int(_cmake_value(version, "Slicer_VERSION_MINOR") or 10) if minor_version is None else minor_version
    )
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    scene.AddNewNodeByClass("vtkMRMLLayoutNode")
    slicer.mrmlScene = scene
    slicer.app = app_standins.App(major, minor, scene, app_logic, tempfile.mkdtemp(prefix="slicer-cache-"))
    for name in app_standins.SLICER_WIDGETS:
        setattr(slicer, name, getattr(app_standins, name))
    import slicer.parameterNodeWrapper  # noqa: F401
    import slicer.ScriptedLoadableModule  # noqa: F401
    import slicer.util  # noqa: F401

    class CoreModule:  # a C++ module: its logic is the real one, registered with the scene
        def __init__(self, name, logic):
            self.name, self._logic = name, logic
            if hasattr(logic, "SetMRMLApplicationLogic"):
                logic.SetMRMLApplicationLogic(app_logic)
            logic.SetMRMLScene(scene)

        def logic(self):
            return self._logic

        def widgetRepresentation(self):
            return None

    for name, cls in (
        ("sequences", "vtkSlicerSequencesLogic"),
        ("segmentations", "vtkSlicerSegmentationsModuleLogic"),
        ("volumes", "vtkSlicerVolumesLogic"),
        ("plots", "vtkSlicerPlotsLogic"),
        ("tables", "vtkSlicerTablesLogic"),
        ("markups", "vtkSlicerMarkupsLogic"),
    ):
        setattr(slicer.modules, name, CoreModule(name, getattr(slicer, cls)()))
    return slicer, gs


def _cmake_value(text: str, name: str) -> str | None:
    import re

    found = re.search(rf'set\({name}\s+"?(\d+)"?\)', text)
    return found.group(1) if found else None


def load_scripted_module(slicer, gs, path: Path):
    """What Slicer does with a scripted module at start-up: its folder on ``sys.path``, the file imported
    under its name, the module class created with the C++ module as ``parent``, and both registered."""
    name = path.stem
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    from app_standins import qSlicerScriptedLoadableModule

    parent = qSlicerScriptedLoadableModule(path, module, name)
    parent.instance = getattr(module, name)(parent)
    setattr(slicer.modules, name.lower(), parent)
    setattr(slicer.modules, name + "Instance", parent.instance)
    setattr(slicer.moduleNames, name, name)
    slicer.app.moduleManager().modules[name] = parent
    return parent


def pump_until(gs, done, timeout_s: float) -> bool:
    """Fire the stand-in event loop's timers until ``done()`` (what Slicer's event loop does meanwhile)."""
    t0 = time.perf_counter()
    while not done():
        if time.perf_counter() - t0 > timeout_s:
            return False
        gs.process_events(0.05)
    return True


def count_observations(widget) -> int:
    return len(getattr(widget, "Observations", []))


def main(sources: Path, report_path: Path) -> None:
    from check_steps import run_all

    report = Report()
    slicer, gs = start_slicer(sources)
    try:
        run_all(slicer, gs, report, sources)
    except Exception:  # a step's set-up failed: what ran so far is still reported
        report.steps.append({"step": "the run", "checks": [], "error": traceback.format_exc()[-3000:]})
    files = {
        name: str(Path(module.__file__).relative_to(sources))
        for name, module in sorted(sys.modules.items())
        if str(getattr(module, "__file__", "") or "").startswith(str(sources))
    }
    report_path.write_text(
        json.dumps(
            {
                "slicer_version": f"{slicer.app.majorVersion}.{slicer.app.minorVersion}",
                "slicer_files": files,
                "steps": report.steps,
                "accepted_by_standins": sorted(gs.ACCEPTED),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]))
