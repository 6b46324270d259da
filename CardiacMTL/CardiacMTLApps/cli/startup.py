"""What a command-line process imports differently from a library caller's: the command line owns its
process, so it may leave out what no command of it uses."""

from __future__ import annotations

import importlib.util
import sys


def import_nibabel_without_pydicom() -> None:
    """Import nibabel, where this process has imported neither it nor pydicom yet, without pydicom.

    nibabel imports pydicom (about 0.14 s of every ``analyze`` on the 2-core machine) only for the NIfTI
    DICOM extension (code 2), which CardiacMTL neither reads nor writes. Without it nibabel keeps such an
    extension's bytes as it does where pydicom is not installed, and reads and writes images as always.
    pydicom itself is imported as usual where a DICOM file needs it. Call it before any thread starts: for
    the moment of nibabel's import, ``import pydicom`` fails in this process.
    """
    if "nibabel" in sys.modules or "pydicom" in sys.modules or importlib.util.find_spec("nibabel") is None:
        return
    sys.modules["pydicom"] = None  # nibabel's optional_package then finds it missing
    try:
        import nibabel  # noqa: F401
    finally:
        if sys.modules.get("pydicom", False) is None:
            del sys.modules["pydicom"]
