"""What the browser tests share: Debian's Chromium (never a downloaded browser), its flags, and the skip
of a test module when the app's packages, playwright or Chromium are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def playwright_or_skip():
    """The ``playwright.sync_api`` module; the calling test module is skipped, with the reason, when the
    browser app cannot be driven here."""
    pytest.importorskip("slicer", reason="slicer-core is not installed (pip install 'cardiac-mtl[app]')")
    pytest.importorskip(
        "trame_slicer", reason="trame-slicer is not installed (pip install 'cardiac-mtl[app]')"
    )
    api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (make test installs Debian's chromium)", allow_module_level=True)
    return api
