"""Shared fixtures: where the read-only data lives, and skips with a reason when it is absent."""

from __future__ import annotations

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
