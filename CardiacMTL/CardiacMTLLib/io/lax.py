"""Reading a long-axis (2- or 4-chamber) cine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.io.nifti import read_checked_nifti
from CardiacMTLLib.types import Cine

# --------------------------------------------------------------------------------------------------
# reading a long-axis cine


def read_lax_cine(path: str | Path, several_planes: bool = False):
    """A long-axis cine as a :class:`~CardiacMTLLib.types.Cine` with one slice and its frames in time.

    A 3D NIfTI image is taken as 2D+t (its third axis is time), a 4D one must have a single slice; a
    folder is read as a DICOM series (the plane with the most phases). With ``several_planes`` a series of
    parallel long-axis planes (as some scanners export) is returned whole, one plane per slice.
    """

    path = Path(path)
    if not path.exists():
        raise CardiacInputError(f"{path}: no such file or folder")
    if path.is_file() and path.name.lower().endswith((".nii", ".nii.gz")):
        data, zooms, affine, _ = read_checked_nifti(path)
        if data.ndim == 3:
            frames = np.transpose(data, (2, 1, 0))[:, np.newaxis]  # (t, 1, rows, cols)
        elif data.shape[2] == 1:
            frames = np.transpose(data[:, :, 0, :], (2, 1, 0))[:, np.newaxis]
        else:
            raise CardiacInputError(
                f"{path}: a long-axis cine must be 2D+t (x, y, t) or 4D with one slice, got shape {data.shape}"
            )
        spacing = (zooms[0], zooms[1], zooms[2] if data.ndim == 4 else 1.0)
        return Cine(
            data=frames,
            spacing_mm=spacing,
            affine=affine,
            frame_numbers=list(range(frames.shape[0])),
            source=str(path),
            image_stems=[path.name.split(".nii")[0]],
        )
    cine = read_cine(path)
    if cine.num_slices != 1 and not several_planes:
        raise CardiacInputError(
            f"{path}: expected one long-axis plane, found {cine.num_slices} parallel slices (a short-axis stack?)"
        )
    return cine


def plane_of(cine: Cine, k: int) -> Cine:
    """Plane ``k`` of a several-plane long-axis cine as a one-plane cine (its own affine, same world)."""
    affine = np.array(cine.affine, dtype=float)
    affine[:3, 3] = affine[:3, 3] + k * affine[:3, 2]
    return Cine(
        data=cine.data[:, k : k + 1],
        spacing_mm=cine.spacing_mm,
        affine=affine,
        frame_numbers=list(cine.frame_numbers),
        source=cine.source,
        trigger_times_ms=cine.trigger_times_ms,
        image_stems=cine.image_stems,
        extra=dict(cine.extra),
    )
