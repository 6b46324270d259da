"""What a desktop module checks before its first action: the Python packages installed (after one
confirmation, torch through the PyTorch extension) and the shipped model files matching their catalogue.
Importable before those packages are there: everything it imports at the top is standard library only."""

from __future__ import annotations

from CardiacMTLLib.models.registry import verify_catalogue
from CardiacMTLLib.report.text import catalogue_text
from CardiacMTLLib.requirements import install_into_slicer


def prepare_slicer(confirm: bool = True) -> str:
    """Install what ``pyproject.toml`` lists and Slicer lacks (:func:`~CardiacMTLLib.requirements.install_into_slicer`),
    then check the shipped model files against the sha256 sums of ``weights/catalogue.json``; returns that
    check in words for the panel. Raises :class:`RuntimeError` when the user declined the installation."""
    if not install_into_slicer(confirm):
        raise RuntimeError("the Python packages it needs were not installed")
    return catalogue_text(verify_catalogue())
