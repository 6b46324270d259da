"""``cardiac-mtl`` answers ``--help`` and argument mistakes without importing torch (about a second of
start-up on a laptop): each case runs the command line in a fresh interpreter and looks at what it loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
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
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "CardiacMTL"), str(REPO_ROOT / "CardiacAtlas"), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
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
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "CardiacMTL"), str(REPO_ROOT / "CardiacAtlas"), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, "-c", LEAN_PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["loaded"] == ["nibabel", "openvino"]
    assert found["nifti"] and found["pydicom"] and found["convert"] and found["missing"]


def test_an_analysis_on_the_command_line_imports_no_pydicom_for_a_nifti_input(tmp_path):
    code, heavy, stderr = run_cli(["demo", "--out", str(tmp_path / "out")], tmp_path)
    assert code == 0, stderr[-2000:]
    assert "pydicom" not in heavy, heavy
