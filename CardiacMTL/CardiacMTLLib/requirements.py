"""The Python packages the library needs, read from the project's ``pyproject.toml`` (their one definition)
for a host that installs them on first use, as the Slicer module does. Standard library only: it runs
before any of those packages is installed.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable
from pathlib import Path

# a copy of pyproject.toml shipped inside the package (a packaged Slicer extension), or the source checkout's
PYPROJECT_PLACES = (
    Path(__file__).with_name("pyproject.toml"),
    Path(__file__).resolve().parents[2] / "pyproject.toml",
)
# what 3D Slicer ships (never replaced from inside Slicer), and what only cohort runs on Dask need
SLICER_PROVIDES = ("numpy", "scipy", "simpleitk", "vtk")
COHORT_ONLY = ("dask", "pyarrow")


def requirement_name(spec: str) -> str:
    """The normalised distribution name of a requirement: ``"scikit-learn>=1.3"`` -> ``"scikit-learn"``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if match is None:
        raise ValueError(f"not a requirement: {spec!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def project_requirements(pyproject: Path | None = None) -> list[str]:
    """``[project] dependencies`` of ``pyproject`` (default: the first of :data:`PYPROJECT_PLACES` that
    exists; none found: an empty list, as in an installed package whose installer read them)."""
    import tomllib

    if pyproject is None:
        pyproject = next((p for p in PYPROJECT_PLACES if p.is_file()), None)
        if pyproject is None:
            return []
    return list(tomllib.loads(Path(pyproject).read_text())["project"]["dependencies"])


def missing_requirements(
    pyproject: Path | None = None,
    installed: set[str] | None = None,
    skip: tuple[str, ...] = SLICER_PROVIDES + COHORT_ONLY,
) -> list[str]:
    """The requirements of ``pyproject`` whose distribution is not installed (``installed``: normalised names,
    default the running interpreter's), leaving out the names in ``skip``."""
    if installed is None:
        installed = {
            requirement_name(d.metadata["Name"] or "unknown") for d in importlib.metadata.distributions()
        }
    return [
        spec
        for spec in project_requirements(pyproject)
        if requirement_name(spec) not in skip and requirement_name(spec) not in installed
    ]


def install_missing(
    install: Callable[[str], object],
    confirm: Callable[[str], bool] = lambda question: True,
    pyproject: Path | None = None,
) -> bool:
    """Install the :func:`missing_requirements` one by one with ``install(spec)`` once ``confirm(question)``
    agreed (a host's dialog); ``False`` when the user declined, ``True`` when all are there. Raises
    :class:`RuntimeError` naming what is still missing after installing."""
    missing = missing_requirements(pyproject)
    if not missing:
        return True
    question = (
        "CardiacMTL installs these Python packages now (once), leaving the host's own numpy, SciPy, "
        "SimpleITK and VTK as they are:\n" + "\n".join(missing)
    )
    if not confirm(question):
        return False
    for spec in missing:
        install(spec)
    still = missing_requirements(pyproject)
    if still:
        raise RuntimeError(f"still missing after installing: {', '.join(still)}")
    return True


def install_into_slicer(confirm: bool = True) -> bool:
    """:func:`install_missing` inside 3D Slicer: asks in Slicer's dialog (unless ``confirm`` is false),
    installs torch through the SlicerPyTorch extension when it is there (it picks the CUDA build that fits
    the GPU) and the rest with ``slicer.util.pip_install``, whose only-if-needed upgrades leave Slicer's own
    packages in place."""
    import slicer

    def install(spec: str) -> None:
        if requirement_name(spec) == "torch" and hasattr(slicer.modules, "pytorchutils"):
            import PyTorchUtils

            PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False)
        else:
            slicer.util.pip_install(spec)

    return install_missing(
        install, lambda question: not confirm or slicer.util.confirmOkCancelDisplay(question)
    )
