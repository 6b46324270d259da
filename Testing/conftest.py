"""Shared fixtures: where the read-only data lives, and skips with a reason when it is absent; a small
generated cine and a fresh interpreter for the tests that run the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ACDC = SHARED_DATA / "acdc"
BIVME_DICOM = SHARED_DATA / "bivme_patient1" / "dicom"


@pytest.fixture
def acdc_dir() -> Path:
    if not (ACDC / "patient001" / "Info.cfg").exists():
        pytest.skip(f"ACDC data not found at {ACDC} (a fresh clone has no ../shared/data)")
    return ACDC


@pytest.fixture
def bivme_dicom_dir() -> Path:
    if not BIVME_DICOM.is_dir():
        pytest.skip(f"biv-me DICOM study not found at {BIVME_DICOM}")
    return BIVME_DICOM


@pytest.fixture(scope="module")
def small_cine(tmp_path_factory) -> Path:
    """A generated 4-frame, 6-slice, 128 x 128 cine as NIfTI (an analysis takes about a second)."""
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case

    case = generate_synthetic_cine(seed=3, num_frames=4, shape=(128, 128, 6), spacing_mm=(2.0, 2.0, 10.0))
    folder = tmp_path_factory.mktemp("cine")
    write_synthetic_case(case, folder)
    return folder / "synthetic_cine.nii.gz"


def run_python(
    args: list[str], cwd: Path, timeout: int = 120, drop: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh interpreter that imports this checkout (without the environment variables
    in ``drop``), in ``cwd``; its output captured as text."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "CardiacMTL"), str(REPO_ROOT / "CardiacAtlas"), env.get("PYTHONPATH", "")]
    )
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )
