"""The in-memory cine type and its readers and writers (ACDC folders, NIfTI 3D/4D, DICOM series).

A :class:`Cine` holds ``data`` as ``(frames, slices, rows, cols)`` together with the geometry that maps
voxel indices to patient (RAS) millimetres. Index order follows NIfTI/ITK: a voxel ``data[t, k, j, i]``
has NIfTI index ``(i, j, k)``, ``spacing_mm`` is ``(i, j, k)`` = (column, row, slice) spacing and
``affine`` maps homogeneous ``(i, j, k, 1)`` to RAS millimetres, exactly as in the input file, so label
maps written back land on the input's grid.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.acdc import is_acdc_folder, read_acdc_folder
from CardiacMTLLib.io.dicom import is_dicom_file, read_dicom_folder
from CardiacMTLLib.io.nifti import check_exists, is_nifti, read_checked_nifti, read_nifti_cine
from CardiacMTLLib.io.patient import checked_body_size
from CardiacMTLLib.types import Cine


def read_cine(
    path: str | Path,
    height_cm: float | None = None,
    weight_kg: float | None = None,
    sex: str | None = None,
    all_frames: bool = False,
) -> Cine:
    """Read a cine from an ACDC patient folder, a NIfTI file (3D: one frame, 4D: frames on the 4th axis) or
    a folder of DICOM files (the short-axis stack is found by orientation).

    ``height_cm``/``weight_kg``/``sex`` (``"M"``/``"F"``) override what the input says (ACDC ``Info.cfg``,
    DICOM PatientSize, PatientWeight and PatientSex). ``all_frames`` reads an ACDC patient folder's whole
    cine (``patientNNN_4d.nii.gz``) instead of its ED and ES frame files. Raises :class:`CardiacInputError` naming the file and the problem.
    """
    height_cm, weight_kg, sex = checked_patient(height_cm, weight_kg, sex)  # before any reading
    path = Path(path)
    check_exists(path)
    if path.is_dir():
        cine = (
            read_acdc_folder(path, all_frames, size_given=(height_cm is not None, weight_kg is not None))
            if is_acdc_folder(path)
            else read_dicom_folder(path)
        )
    elif is_nifti(path):
        cine = read_nifti_cine(path)
    elif path.suffix.lower() == ".zip":
        cine = read_zipped_cine(path)
    elif is_dicom_file(path):
        raise CardiacInputError(
            f"{path}: one DICOM image; a cine is a series of images: give the folder that holds the "
            f"series ({path.parent})"
        )
    else:
        raise CardiacInputError(
            f"{path}: expected an ACDC patient folder, a NIfTI cine (.nii or .nii.gz, 3D or 4D), a folder "
            "of DICOM files or a .zip of one, found a file of another kind"
        )
    for name, value in (("height_cm", height_cm), ("weight_kg", weight_kg), ("sex", sex)):
        if value is not None:
            setattr(cine, name, value)
    return cine


def checked_patient(
    height_cm: float | None, weight_kg: float | None, sex: str | None
) -> tuple[float | None, float | None, str | None]:
    """What a user gives of the patient, checked: a height and weight a person can have (as floats,
    :func:`~CardiacMTLLib.io.patient.checked_body_size`) and the sex as ``"M"``/``"F"``
    (:func:`checked_sex`); ``None`` stays ``None``. A one-line error names a bad value."""
    return (
        checked_body_size("height", height_cm, "height"),
        checked_body_size("weight", weight_kg, "weight"),
        None if sex is None else checked_sex(sex),
    )


def checked_sex(value: str) -> str:
    """``"M"`` or ``"F"`` from what a user types (m, male, F, female ...), else a one-line error."""
    text = str(value).strip().upper()
    if text in ("M", "MALE"):
        return "M"
    if text in ("F", "FEMALE"):
        return "F"
    raise CardiacInputError(f"sex must be M or F, got {value!r}")


def read_zipped_cine(path: Path) -> Cine:
    """The cine in a zip of DICOM files (or of an ACDC patient folder), read from a temporary extraction.

    A DICOM cine keeps ``extra["dicom_archive"]`` (the zip) and its ``dicom_files`` as member names, so
    exports can read the source images again after the extraction is gone.
    """
    try:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="cardiacmtl-zip-") as tmp:
            archive.extractall(tmp)
            folder = Path(tmp)
            entries = [e for e in folder.iterdir() if not e.name.startswith((".", "__MACOSX"))]
            if len(entries) == 1 and entries[0].is_dir() and is_acdc_folder(entries[0]):
                folder = entries[0]
            try:
                cine = read_acdc_folder(folder) if is_acdc_folder(folder) else read_dicom_folder(folder)
            except CardiacInputError as e:
                raise CardiacInputError(
                    f"{path} (zip): {str(e).replace(str(folder), '').lstrip('/: ')}"
                ) from e
    except (zipfile.BadZipFile, OSError) as e:
        raise CardiacInputError(f"{path}: not a readable zip archive ({e})") from e
    if "dicom_files" in cine.extra:
        cine.extra["dicom_files"] = [
            [Path(f).relative_to(tmp).as_posix() for f in frame] for frame in cine.extra["dicom_files"]
        ]
        cine.extra["dicom_archive"] = str(path.resolve())
    cine.source = str(path)
    cine.image_stems = [path.name.removesuffix(path.suffix) or "cine"]
    return cine


def read_volume(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """One 3D image as ``(slices, rows, cols)`` float32 with its ``(i, j, k)`` spacing (mm) and affine.

    Takes a 3D NIfTI file, or anything :func:`read_cine` reads that holds a single frame; a cine with
    several frames is an error (segment one frame; ``analyze`` takes the whole cine).
    """
    path = Path(path)
    check_exists(path)
    if path.is_file() and is_nifti(path):
        data, zooms, affine, _ = read_checked_nifti(path)
        if data.ndim != 3:
            raise CardiacInputError(
                f"{path}: expected a 3D image, found 4D with shape {data.shape} ({data.shape[3]} frames)"
            )
        return np.ascontiguousarray(np.transpose(data, (2, 1, 0))), tuple(zooms[:3]), affine
    cine = read_cine(path)
    if cine.num_frames != 1:
        raise CardiacInputError(f"{path}: expected a 3D image, found 4D: a cine of {cine.num_frames} frames")
    return cine.data[0], cine.spacing_mm, cine.affine
