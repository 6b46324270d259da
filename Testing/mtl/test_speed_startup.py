"""``cardiac-mtl`` answers ``--help`` and argument mistakes without importing torch (about a second of
start-up on a laptop): each case runs the command line in a fresh interpreter and looks at what it loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_python

PROBE = """
import json
import sys
from CardiacMTLApps.cli.mtl import main
try:
    code = main({args!r})
except SystemExit as e:
    code = e.code
print("exit", code)
print(json.dumps(sorted(m for m in ("torch", "scipy", "sklearn", "matplotlib", "pydicom") if m in sys.modules)))
"""


def run_cli(args: list[str], tmp_path: Path) -> tuple[int, list[str], str]:
    done = run_python(["-c", PROBE.format(args=args)], tmp_path)
    lines = done.stdout.strip().splitlines()
    code = int(lines[-2].split()[1]) if lines[-2].split()[1].lstrip("-").isdigit() else 0
    heavy = json.loads(lines[-1])
    return code, heavy, done.stderr


@pytest.mark.parametrize(
    "args, status",
    [
        (["--help"], 0),
        (["analyze", "--help"], 0),
        (["analyze"], 2),  # the input and --out are missing
        (["analyze", "cine.nii.gz", "--out", "out", "--device", "tpu"], 2),
        (["segment", "--precision", "fp8", "a.nii.gz", "--out", "out"], 2),
    ],
)
def test_help_and_argument_errors_do_not_import_torch(tmp_path, args, status):
    code, heavy, stderr = run_cli(args, tmp_path)
    assert code == status, stderr
    assert "torch" not in heavy, f"cardiac-mtl {' '.join(args)} imported {heavy}"


def test_a_missing_input_is_one_line_before_torch_is_imported(tmp_path):
    code, heavy, stderr = run_cli(["analyze", str(tmp_path / "nowhere.nii.gz"), "--out", "out"], tmp_path)
    assert code != 0
    assert "nowhere.nii.gz" in stderr and "Traceback" not in stderr
    assert "torch" not in heavy, heavy


LEAN_PROBE = """
import json
import sys
from CardiacMTLApps.cli.startup import import_nibabel_without_pydicom
from CardiacMTLLib.models.runtime import import_openvino

import_nibabel_without_pydicom()
ov = import_openvino()
loaded = sorted(m for m in ("nibabel", "pydicom", "openvino", "openvino.tools.ovc") if m in sys.modules)
import numpy as np
import nibabel
image = nibabel.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
nibabel.save(image, "round.nii.gz")
same = bool((np.asanyarray(nibabel.load("round.nii.gz").dataobj) == np.arange(24).reshape(2, 3, 4)).all())
import pydicom
from openvino import convert_model
print(json.dumps({
    "loaded": loaded, "nifti": same, "pydicom": hasattr(pydicom, "dcmread"),
    "convert": callable(convert_model) and ov.convert_model is convert_model,
    "missing": not hasattr(ov, "no_such_attribute"),
}))
"""


def test_the_command_line_imports_nibabel_without_pydicom_and_openvino_without_its_converter(tmp_path):
    """nibabel's pydicom and openvino's conversion tools are left out until something asks for them, and
    both are still there when it does (NIfTI round trip, ``import pydicom``, ``openvino.convert_model``)."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    done = run_python(["-c", LEAN_PROBE], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["loaded"] == ["nibabel", "openvino"]
    assert found["nifti"] and found["pydicom"] and found["convert"] and found["missing"]


def test_an_analysis_on_the_command_line_imports_no_pydicom_for_a_nifti_input(tmp_path):
    code, heavy, stderr = run_cli(["demo", "--out", str(tmp_path / "out")], tmp_path)
    assert code == 0, stderr[-2000:]
    assert "pydicom" not in heavy, heavy


DRAWING_PROBE = """
import json
import sys
import threading

import CardiacMTLLib.outputs as outputs
import CardiacMTLLib.report.drawing as drawing
from CardiacMTLApps.cli.mtl import main

seen = dict()
import_drawing, write_report = drawing._import_drawing, outputs.write_report


def recorded_import():
    seen["thread"] = threading.current_thread().name
    import_drawing()


def recorded_report(*args, **kwargs):
    seen["imported_before_report"] = "matplotlib.figure" in sys.modules
    return write_report(*args, **kwargs)


drawing._import_drawing, outputs.write_report = recorded_import, recorded_report
seen["before"] = "matplotlib" in sys.modules
seen["code"] = main({args!r})
print(json.dumps(seen))
"""


def test_an_analysis_on_openvino_imports_matplotlib_on_a_thread_before_its_report(tmp_path):
    """The report's matplotlib is imported by the preload thread while the network runs, and is there
    when ``report.png`` is drawn."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    probe = DRAWING_PROBE.format(args=["demo", "--out", str(tmp_path / "out"), "--device", "cpu"])
    done = run_python(["-c", probe], tmp_path, timeout=300, drop=("CARDIACMTL_RUNTIME",))
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0 and not seen["before"]
    assert seen["thread"] == "cardiac-mtl-drawing-import"
    assert seen["imported_before_report"]
    assert (tmp_path / "out" / "analysis" / "report.png").is_file()


def test_an_analysis_that_fails_waits_for_the_drawing_import_before_it_raises(tmp_path, monkeypatch):
    """No import of matplotlib is left running beside the caller after a refused input."""
    import threading
    import time
    import types

    import CardiacMTLLib.actions as actions
    import CardiacMTLLib.report.drawing as drawing
    from CardiacMTLLib.errors import CardiacInputError

    finished = threading.Event()

    def slow_import():
        time.sleep(0.3)
        finished.set()

    def refuse(*args, **kwargs):
        raise CardiacInputError("cine.nii.gz: ED and ES are the same frame")

    monkeypatch.setattr(drawing, "sys", types.SimpleNamespace(modules={}))  # as if nothing were imported
    monkeypatch.setattr(drawing, "_thread", None)
    monkeypatch.setattr(drawing, "_import_drawing", slow_import)
    monkeypatch.setattr(actions, "preload_model", lambda *args, **kwargs: threading.current_thread())
    monkeypatch.setattr(actions, "read_cine", lambda *args, **kwargs: object())
    monkeypatch.setattr(actions, "analyze", refuse)
    with pytest.raises(CardiacInputError):
        actions.analyze_path(tmp_path / "cine.nii.gz", tmp_path / "out")
    assert finished.is_set()
    assert drawing.preload_drawing() is None  # started once per process
