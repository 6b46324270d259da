"""The Python packages the library needs, read from the project's ``pyproject.toml`` (their one definition)
for a host that installs them on first use, as the Slicer module does, and the 3D Slicer it supports.
Standard library only and importable by an older Python: it runs before any of those packages is
installed, and in an unsupported Slicer it is what says so.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
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
# made use of when a network is trained or converted (its int8 quantisation), never by an analysis
CONVERSION_ONLY = ("nncf",)
# what installing a missing package upgrades among the host's own: package -> (the host's package, the
# lowest version it needs). highdicom >= 0.23 needs pydicom >= 3.0.1, and Slicer 5.10 ships pydicom 2.4.4
UPGRADES = {"highdicom": ("pydicom", "3.0.1")}
# the oldest 3D Slicer the modules support, and the Python it ships (5.6 and 5.8 run 3.9, too old)
MINIMUM_SLICER = (5, 10)
SLICER_PYTHON = (3, 12)
MINIMUM_PYTHON = (3, 11)  # what the library itself needs (tomllib, ``X | Y`` in isinstance)
TORCH_EXTENSION_MISSING = (
    "torch comes from 3D Slicer's PyTorch extension, never from PyPI's default wheel: install PyTorch in "
    "the Extensions Manager (View > Extensions Manager), restart Slicer and try again"
)


def unsupported_slicer_message(major: int, minor: int, python: tuple[int, ...] | None = None) -> str | None:
    """What a module panel shows in a 3D Slicer older than :data:`MINIMUM_SLICER` (or one whose Python is
    older than :data:`MINIMUM_PYTHON`), instead of a traceback; ``None`` when this Slicer is supported.

    ``major``/``minor`` are ``slicer.app.majorVersion``/``minorVersion``; ``python`` defaults to the
    running interpreter's version."""
    python = tuple(python or sys.version_info[:2])
    if (int(major), int(minor)) >= MINIMUM_SLICER and python[:2] >= MINIMUM_PYTHON:
        return None
    need, need_python = (".".join(str(v) for v in version) for version in (MINIMUM_SLICER, SLICER_PYTHON))
    return (
        f"CardiacMTL needs 3D Slicer {need} or newer (Python {need_python}); this is Slicer "
        f"{int(major)}.{int(minor)} with Python {'.'.join(str(v) for v in python[:2])}. "
        "Install the current release from https://download.slicer.org and add the extension there."
    )


def torch_version_requirement(spec: str) -> str:
    """The version part of a torch requirement, as PyTorchUtils' ``installTorch`` takes it:
    ``"torch>=2.2"`` -> ``">=2.2"`` (environment markers dropped)."""
    if requirement_name(spec) != "torch":
        raise ValueError(f"not a torch requirement: {spec!r}")
    version = re.sub(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*", "", spec.split(";")[0]).strip()
    if not version:
        raise ValueError(f"{spec!r} has no version constraint; torch must be pinned to a range")
    return version


def torch_backend(backends) -> str:
    """The torch build to install among those light-the-torch finds compatible (``["cpu", "cu118",
    "cu121"]``): the newest CUDA build when the NVIDIA driver allows one, else ``"cpu"``."""
    cuda = [b for b in backends if re.fullmatch(r"cu\d+", b)]
    return max(cuda, key=lambda b: int(b[2:])) if cuda else "cpu"


def backend_text(backend: str, backends=()) -> str:
    """The CPU/CUDA choice in words for the confirmation: ``"the CUDA 12.1 build (cu121)"``."""
    others = ", ".join(b for b in backends if b != backend)
    if backend.startswith("cu") and backend[2:].isdigit():
        digits = backend[2:]
        chosen = f"the CUDA {digits[:-1]}.{digits[-1]} build ({backend}; an NVIDIA GPU driver was found)"
    else:
        chosen = "the CPU build (no NVIDIA GPU driver found, so the analysis runs on the processor)"
    also = f"; also possible here: {others} (choose in the PyTorch Utils module)" if others else ""
    return chosen + also


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
    skip: tuple[str, ...] = SLICER_PROVIDES + COHORT_ONLY + CONVERSION_ONLY,
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
    describe: Callable[[str], str] = str,
) -> bool:
    """Install the :func:`missing_requirements` one by one with ``install(spec)`` once ``confirm(question)``
    agreed (a host's dialog; ``describe(spec)`` words each line of the question); ``False`` when the user
    declined, ``True`` when all are there. Raises :class:`RuntimeError` naming what is still missing after
    installing."""
    missing = missing_requirements(pyproject)
    if not missing:
        return True
    question = (
        "CardiacMTL installs these Python packages now (once), leaving the host's own numpy, SciPy, "
        "SimpleITK and VTK as they are:\n" + "\n".join(describe(spec) for spec in missing)
    )
    upgraded = host_upgrades(missing)
    if upgraded:
        question += "\nand upgrades the host's " + "; ".join(upgraded)
    if not confirm(question):
        return False
    for spec in missing:
        install(spec)
    still = missing_requirements(pyproject)
    if still:
        raise RuntimeError(f"still missing after installing: {', '.join(still)}")
    return True


def host_upgrades(
    missing: list[str], version: Callable[[str], str] = importlib.metadata.version
) -> list[str]:
    """The host's packages that installing ``missing`` upgrades (:data:`UPGRADES`), in words
    (``"pydicom 2.4.4 to >= 3.0.1 (highdicom needs it)"``); ``version(name)`` is the installed version."""
    found = []
    for spec in missing:
        if (needs := UPGRADES.get(requirement_name(spec))) is None:
            continue
        name, lowest = needs
        try:
            have = version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not the host's: installed as a requirement like any other
        if _release(have) < _release(lowest):
            found.append(f"{name} {have} to >= {lowest} ({requirement_name(spec)} needs it)")
    return found


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def install_into_slicer(confirm: bool = True) -> bool:
    """:func:`install_missing` inside 3D Slicer: asks in Slicer's dialog (unless ``confirm`` is false), installs
    torch through the PyTorch extension (SlicerPyTorch's ``installTorch``, with pyproject.toml's version range
    and the CPU or CUDA build named in the question) and the rest with ``slicer.util.pip_install``, whose
    only-if-needed upgrades leave Slicer's own packages in place. Without the PyTorch extension it raises
    :class:`RuntimeError` saying how to get it: PyPI's default torch wheel is never installed."""
    import slicer

    torch_plan: dict[str, str] = {}

    def describe(spec: str) -> str:
        if requirement_name(spec) != "torch":
            return spec
        if not hasattr(slicer.modules, "pytorchutils"):
            raise RuntimeError(TORCH_EXTENSION_MISSING)
        import PyTorchUtils

        requirement = torch_version_requirement(spec)
        backends = PyTorchUtils.PyTorchUtilsLogic.getCompatibleComputationBackends(
            torchVersionRequirement=requirement
        )
        torch_plan.update(requirement=requirement, backend=torch_backend(backends))
        return (
            f"torch{requirement} from the PyTorch extension: {backend_text(torch_plan['backend'], backends)}"
        )

    def install(spec: str) -> None:
        if requirement_name(spec) == "torch":
            import PyTorchUtils

            PyTorchUtils.PyTorchUtilsLogic().installTorch(
                askConfirmation=False,
                forceComputationBackend=torch_plan["backend"],
                torchVersionRequirement=torch_plan["requirement"],
            )
        else:
            slicer.util.pip_install(spec)

    return install_missing(
        install,
        lambda question: not confirm or slicer.util.confirmOkCancelDisplay(question),
        describe=describe,
    )
