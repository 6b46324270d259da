"""NIfTI images: reading with the checks every action needs (gzip integrity, spacing, finite values, orientation) and writing label maps and cines atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import Cine, Label

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def check_exists(path: Path) -> None:
    if not path.exists():
        raise CardiacInputError(f"{path}: no such file or folder")


def _gunzip(path: Path) -> bytes:
    """The whole decompressed content of a gzip file: only at its end are the CRC and length checked, and
    nibabel stops reading as soon as it has the voxels it needs, so scrambled bytes would otherwise pass as
    image data. Read once here, the bytes are what nibabel then parses."""
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise CardiacInputError(
            f"{path}: not a readable NIfTI image: the gzip data is corrupt or truncated ({e})"
        ) from e


def read_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], object]:
    """Read a NIfTI file with nibabel: ``(array in file index order, affine, zooms, header)``."""
    import nibabel as nib

    path = Path(path)
    check_exists(path)
    try:
        if path.name.lower().endswith(".gz"):
            content = _gunzip(path)
            kind = nib.Nifti2Image if content[:4] == (540).to_bytes(4, "little") else nib.Nifti1Image
            image = kind.from_bytes(content)
        else:
            image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except CardiacInputError:
        raise
    except Exception as e:  # nibabel raises several types for corrupt files
        raise CardiacInputError(f"{path}: not a readable NIfTI image ({e})") from e
    zooms = tuple(float(z) for z in image.header.get_zooms())
    return array, np.asarray(image.affine, dtype=float), zooms, image.header


def read_nifti_volume(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """Read a 3D NIfTI image as ``(slices, rows, cols)`` with its ``(i, j, k)`` spacing and affine."""
    array, affine, zooms, _ = read_nifti(path)
    array = np.squeeze(array) if array.ndim > 3 and all(s == 1 for s in array.shape[3:]) else array
    if array.ndim != 3:
        raise CardiacInputError(f"{path}: expected a 3D image, found {array.ndim}D with shape {array.shape}")
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0))), tuple(zooms[:3]), affine


def read_label_map(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """A 3D label map as ``(slices, rows, cols)`` uint8 with its spacing and affine; only the values of
    :class:`~CardiacMTLLib.types.Label` are accepted."""
    labels, spacing, affine = read_nifti_volume(path)
    values = set(np.unique(labels).tolist())
    known = {int(v) for v in Label}
    if not values <= known:
        names = ", ".join(f"{int(v)} {v.short_name}" for v in Label)
        raise CardiacInputError(f"{path}: a label map must hold {names}; found values {sorted(values)}")
    return labels.astype(np.uint8), spacing, affine


# --------------------------------------------------------------------------------------------------
# NIfTI


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(path: Path) -> str:
    """``patient001_frame01`` for ``patient001_frame01.nii.gz``."""
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _stored_pixdim(path: Path, header) -> np.ndarray:
    """``pixdim`` as written in the file: nibabel silently turns a zero spacing into 1 mm when loading."""
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as f:
            raw = type(header).from_fileobj(f, check=False)
        return np.asarray(raw["pixdim"], dtype=float)
    except Exception:  # the header was readable a moment ago; fall back to nibabel's checked copy
        return np.asarray(header["pixdim"], dtype=float)


def read_checked_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...], np.ndarray, object]:
    """A 3D or 4D NIfTI image as float32 in file index order ``(i, j, k[, t])``, checked for what every
    action needs: not empty, finite values, a voxel spacing and an invertible affine.

    Returns ``(array, zooms, affine, header)``; trailing singleton axes beyond the 4th are dropped, and a
    4D image with one frame is returned as 3D.
    """
    array, affine, zooms, header = read_nifti(path)
    shape = tuple(int(n) for n in header.get_data_shape())
    if len(shape) == 0 or 0 in shape:
        raise CardiacInputError(f"{path}: the image is empty (shape {shape})")
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (3, 4):
        raise CardiacInputError(
            f"{path}: expected a 3D image or a 4D cine (columns, rows, slices[, frames]), "
            f"found {array.ndim}D with shape {array.shape}"
        )
    pixdim = _stored_pixdim(path, header)[1:4]
    if not np.all(np.isfinite(pixdim) & (pixdim != 0)):
        raise CardiacInputError(
            f"{path}: the voxel spacing is missing (pixdim[1:4] = {pixdim.tolist()}); "
            "expected three positive spacings in mm"
        )
    check_inplane_spacing(path, pixdim[:2], shape[:2])
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise CardiacInputError(
            f"{path}: the image orientation (affine) is missing or degenerate: {affine.tolist()}"
        )
    try:
        data = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise CardiacInputError(f"{path}: expected grey-scale voxels, found data type {array.dtype}") from e
    finite = np.isfinite(data)
    if not finite.all():
        raise CardiacInputError(
            f"{path}: the image contains {int(finite.size - np.count_nonzero(finite))} NaN or infinite voxel value(s)"
        )
    return data, zooms, affine, header


# Cardiac cine MRI has pixels of about 0.5-3 mm; beyond these bounds a file is not such an image, and
# resampling it to the network's spacing would need an absurd amount of memory (100 mm pixels: 23 GB).
MIN_INPLANE_SPACING_MM = 0.1
MAX_INPLANE_SPACING_MM = 10.0
MAX_FIELD_OF_VIEW_MM = 1000.0


def check_inplane_spacing(path, spacing, size) -> None:
    spacing = [abs(float(s)) for s in spacing]
    fov = [s * int(n) for s, n in zip(spacing, size, strict=True)]
    if (
        not all(MIN_INPLANE_SPACING_MM <= s <= MAX_INPLANE_SPACING_MM for s in spacing)
        or max(fov) > MAX_FIELD_OF_VIEW_MM
    ):
        raise CardiacInputError(
            f"{path}: in-plane pixel spacing {spacing[0]:g} x {spacing[1]:g} mm (field of view "
            f"{fov[0]:g} x {fov[1]:g} mm); a cardiac cine has pixels of {MIN_INPLANE_SPACING_MM:g}-"
            f"{MAX_INPLANE_SPACING_MM:g} mm and a field of view under {MAX_FIELD_OF_VIEW_MM:g} mm"
        )


def _nifti_frame_times_ms(header, zooms: tuple[float, ...], num_frames: int) -> list[float] | None:
    """Frame times from the NIfTI time step, only when the file says its unit."""
    scale = {"sec": 1000.0, "msec": 1.0, "usec": 0.001}.get(header.get_xyzt_units()[1])
    if num_frames < 2 or scale is None or len(zooms) < 4 or not (np.isfinite(zooms[3]) and zooms[3] > 0):
        return None
    return [round(t * zooms[3] * scale, 6) for t in range(num_frames)]


def read_nifti_cine(path: Path) -> Cine:
    data, zooms, affine, header = read_checked_nifti(path)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    num_frames = data.shape[3]
    return Cine(
        data=np.ascontiguousarray(np.transpose(data, (3, 2, 1, 0))),
        spacing_mm=tuple(zooms[:3]),
        affine=affine,
        frame_numbers=list(range(num_frames)),
        source=str(path),
        trigger_times_ms=_nifti_frame_times_ms(header, zooms, num_frames),
        image_stems=[nifti_stem(path)],
        extra={"image_files": [str(path)]},
    )


# --------------------------------------------------------------------------------------------------
# writers


def _save_nifti_atomic(image, path: Path) -> None:
    """Save into a temporary folder next to ``path`` and rename into place: a failed write leaves nothing."""
    import shutil

    if not is_nifti(path):
        raise CardiacInputError(f"{path}: output file name must end in .nii or .nii.gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        image.to_filename(str(staging / path.name))
        os.replace(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_label_map(
    labels: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    spacing_mm: tuple[float, float, float] | None = None,
) -> Path:
    """Write a uint8 label map, ``(slices, rows, cols)`` or ``(frames, slices, rows, cols)``, as NIfTI.

    ``affine`` is the image's ``(i, j, k)`` to RAS affine; reading the file back with
    :func:`read_nifti_volume` gives the same array and affine. ``spacing_mm`` sets the header's voxel
    spacing where it differs from the affine's column lengths (ACDC files carry a unit affine and the real
    spacing in ``pixdim``); without it the spacing is taken from the affine.
    """
    import nibabel as nib

    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim not in (3, 4) or labels.size == 0:
        raise CardiacInputError(
            f"{path}: a label map must be (slices, rows, cols) or (frames, slices, rows, cols), got shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) and not np.array_equal(labels, np.round(labels)):
        raise CardiacInputError(f"{path}: label values must be whole numbers, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() > 255:
        raise CardiacInputError(f"{path}: label values must be in 0..255, got {labels.min()}..{labels.max()}")
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4):
        raise CardiacInputError(f"{path}: the affine must be 4 x 4, got shape {affine.shape}")
    # the reversed-axes view of a C-ordered array is Fortran-ordered, the order NIfTI stores: nibabel
    # writes its buffer as it is, where a C-contiguous copy costs two transposes of the whole cine
    array = np.transpose(labels.astype(np.uint8, copy=False), tuple(range(labels.ndim))[::-1])
    image = nib.Nifti1Image(array, affine)
    image.set_data_dtype(np.uint8)
    if spacing_mm is not None:
        image.header.set_zooms(tuple(float(s) for s in spacing_mm) + (1.0,) * (labels.ndim - 3))
    image.header.set_xyzt_units("mm")
    _save_nifti_atomic(image, path)
    return path


def write_cine_nifti(cine: Cine, path: str | Path) -> Path:
    """Write the cine's image as float32 NIfTI: 4D ``(i, j, k, t)``, or 3D when it has one frame.

    The header keeps ``cine.spacing_mm``; with trigger times the time step is their median interval (ms),
    so :func:`read_cine` gets approximate, evenly spaced frame times back.
    """
    import nibabel as nib

    path = Path(path)
    data = cine.data.astype(np.float32, copy=False)
    array = data[0].transpose(2, 1, 0) if cine.num_frames == 1 else data.transpose(3, 2, 1, 0)
    image = nib.Nifti1Image(np.ascontiguousarray(array), cine.affine)
    image.set_data_dtype(np.float32)
    zooms = tuple(cine.spacing_mm)
    time_unit = "unknown"
    if cine.num_frames > 1:
        step = 1.0
        if cine.trigger_times_ms and len(cine.trigger_times_ms) > 1:
            median_step = float(np.median(np.diff(cine.trigger_times_ms)))
            if median_step > 0:
                step, time_unit = median_step, "msec"
        zooms = zooms + (step,)
    image.header.set_zooms(zooms)
    image.header.set_xyzt_units("mm", time_unit)
    _save_nifti_atomic(image, path)
    return path
