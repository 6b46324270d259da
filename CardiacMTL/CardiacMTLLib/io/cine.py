"""The in-memory cine type and its readers and writers (ACDC folders, NIfTI 3D/4D, DICOM series).

A :class:`Cine` holds ``data`` as ``(frames, slices, rows, cols)`` together with the geometry that maps
voxel indices to patient (RAS) millimetres. Index order follows NIfTI/ITK: a voxel ``data[t, k, j, i]``
has NIfTI index ``(i, j, k)``, ``spacing_mm`` is ``(i, j, k)`` = (column, row, slice) spacing and
``affine`` maps homogeneous ``(i, j, k, 1)`` to RAS millimetres, exactly as in the input file, so label
maps written back land on the input's grid.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import Cine, Label

ACDC_FRAME_RE = re.compile(r"^(?P<patient>.+)_frame(?P<frame>\d+)\.nii(\.gz)?$")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Info.cfg keys inference may use; ``Group`` is the diagnosis label and must never reach inference.
ACDC_INFERENCE_KEYS = ("ED", "ES", "Height", "Weight", "NbFrame")
# Two DICOM images belong to the same stack when their direction cosines differ by less than this
# (about 0.6 degrees): far below the angle between any two planned cardiac views.
ORIENTATION_TOLERANCE = 1e-2
# Images whose positions along the slice normal differ by less than this (mm) are the same slice.
SLICE_POSITION_TOLERANCE_MM = 0.05


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise CardiacInputError(f"{path}: no such file or folder")


def _check_gzip(path: Path) -> None:
    """Read a gzip file to its end: only there are its CRC and length checked, and nibabel stops reading
    as soon as it has the voxels it needs, so scrambled bytes would otherwise pass as image data."""
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as e:
        raise CardiacInputError(
            f"{path}: not a readable NIfTI image: the gzip data is corrupt or truncated ({e})"
        ) from e


def read_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], object]:
    """Read a NIfTI file with nibabel: ``(array in file index order, affine, zooms, header)``."""
    import nibabel as nib

    path = Path(path)
    _check_exists(path)
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
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


def read_acdc_info(path: str | Path) -> dict[str, str]:
    """Parse an ACDC ``Info.cfg`` (``Key: value`` lines) into a dict of strings."""
    info: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def acdc_frame_files(folder: str | Path) -> list[tuple[int, Path]]:
    """The image frames of an ACDC patient folder as ``(frame number, path)``, ground truth excluded."""
    frames = []
    for path in sorted(Path(folder).iterdir()):
        match = ACDC_FRAME_RE.match(path.name)
        if match and not path.name.endswith(("_gt.nii.gz", "_gt.nii")):
            frames.append((int(match.group("frame")), path))
    return frames


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
    _check_inplane_spacing(path, pixdim[:2], shape[:2])
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


def _check_inplane_spacing(path, spacing, size) -> None:
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


def _read_nifti_cine(path: Path) -> Cine:
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
# ACDC patient folders


def _acdc_4d_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and nifti_stem(p).endswith("_4d") and is_nifti(p)
    )


def _is_acdc_folder(folder: Path) -> bool:
    return (folder / "Info.cfg").is_file() or bool(acdc_frame_files(folder)) or bool(_acdc_4d_files(folder))


def _read_acdc_inference_info(path: Path) -> dict[str, str]:
    """The ``Info.cfg`` entries inference may use; every other line, ``Group`` above all, is skipped unparsed."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CardiacInputError(f"{path}: cannot read the ACDC patient information ({e})") from e
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ACDC_INFERENCE_KEYS:
            info[key.strip()] = value.strip()
    return info


def _info_number(info: dict[str, str], key: str, path: Path) -> float | None:
    if not info.get(key):
        return None
    try:
        value = float(info[key])
    except ValueError as e:
        raise CardiacInputError(f"{path}: {key} must be a number, got {info[key]!r}") from e
    return value if np.isfinite(value) and value > 0 else None


def _read_acdc_folder(folder: Path) -> Cine:
    info_path = folder / "Info.cfg"
    info = _read_acdc_inference_info(info_path) if info_path.is_file() else {}
    frame_files = acdc_frame_files(folder)
    if frame_files:
        numbers = [n for n, _ in frame_files]
        if len(set(numbers)) != len(numbers):
            raise CardiacInputError(
                f"{folder}: several files for one frame number: {[p.name for _, p in frame_files]}"
            )
        volumes = []
        for _, path in frame_files:
            data, zooms, affine, _ = read_checked_nifti(path)
            if data.ndim != 3:
                raise CardiacInputError(
                    f"{path}: an ACDC frame file must be a 3D image, found {data.ndim}D with shape {data.shape}"
                )
            volumes.append((path, data, zooms[:3], affine))
        first_path, first_data, first_zooms, first_affine = volumes[0]
        for path, data, zooms, affine in volumes[1:]:
            if data.shape != first_data.shape:
                raise CardiacInputError(
                    f"{path}: shape {data.shape} differs from {first_path.name} {first_data.shape}; "
                    "all frames of a cine must share one grid"
                )
            if not np.allclose(zooms, first_zooms, rtol=1e-5) or not np.allclose(
                affine, first_affine, atol=1e-4
            ):
                raise CardiacInputError(
                    f"{path}: spacing {zooms} / affine {affine.tolist()} differ from {first_path.name} "
                    f"({first_zooms} / {first_affine.tolist()}); all frames of a cine must share one grid"
                )
        cine = Cine(
            data=np.stack([np.transpose(data, (2, 1, 0)) for _, data, _, _ in volumes]),
            spacing_mm=tuple(first_zooms),
            affine=first_affine,
            frame_numbers=numbers,
            source=str(folder),
            image_stems=[nifti_stem(p) for p, *_ in volumes],
            extra={"image_files": [str(p) for p, *_ in volumes]},
        )
    else:
        four_d = _acdc_4d_files(folder)
        if len(four_d) != 1:
            raise CardiacInputError(
                f"{folder}: expected an ACDC patient folder with patientNNN_frameMM.nii.gz frame files or "
                f"one patientNNN_4d.nii.gz cine, found "
                + (f"{len(four_d)} 4D files: {[p.name for p in four_d]}" if four_d else "neither")
            )
        cine = _read_nifti_cine(four_d[0])
        cine.source = str(folder)
        # ACDC numbers frames from 1 (frame01 is the first time point of the 4D file), as ED/ES do
        cine.frame_numbers = list(range(1, cine.num_frames + 1))
    warnings = cine.extra.setdefault("warnings", [])
    for key, attribute in (("ED", "end_diastole"), ("ES", "end_systole")):
        value = _info_number(info, key, info_path)
        # a frame Info.cfg names but the folder lacks is left for the pipeline to find from the volume curve
        if value is not None and int(value) in cine.frame_numbers:
            setattr(cine, attribute, int(value))
        elif value is not None:
            warnings.append(
                f"{info_path}: {key} frame {int(value)} is not in the folder (frames {cine.frame_numbers}); "
                "the LV volume curve chooses it"
            )
    if cine.end_diastole is not None and cine.end_diastole == cine.end_systole:
        # the volumes can still be measured (the curve chooses), but a diagnosis on unconfirmed frames is not
        cine.extra["metadata_conflicts"] = [
            f"{info_path} names frame {cine.end_diastole} as both ED and ES; the LV volume curve chose them"
        ]
        cine.end_diastole = cine.end_systole = None
    cine.height_cm = _info_number(info, "Height", info_path)
    cine.weight_kg = _info_number(info, "Weight", info_path)
    cine.extra["acdc_info"] = info
    return cine


# --------------------------------------------------------------------------------------------------
# DICOM folders


@dataclass
class _DicomImage:
    """What the stack assembly needs from one DICOM header (positions in DICOM LPS mm)."""

    path: Path
    sop_instance_uid: str
    series_uid: str
    series_number: int | None
    series_description: str
    orientation: np.ndarray
    position: np.ndarray
    pixel_spacing_rc: tuple[float, float]
    rows: int
    cols: int
    trigger_time_ms: float | None
    instance_number: int | None
    slice_thickness_mm: float | None
    patient_size_m: float | None
    patient_weight_kg: float | None


def _walk_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _optional_float(ds, keyword: str) -> float | None:
    value = ds.get(keyword)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _read_dicom_header(path: Path) -> _DicomImage | str:
    """The geometry of one DICOM image, or why the file is not a single-frame image with geometry."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as e:  # pydicom raises many types on non-DICOM or corrupt files; such files are skipped
        return f"not a readable DICOM file ({type(e).__name__}: {str(e)[:80]})"
    missing = [
        k
        for k in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns")
        if k not in ds
    ]
    if missing:
        if "SOPClassUID" not in ds and "Rows" not in ds:
            return "a DICOM file whose header holds no image (corrupt or not an image)"
        return f"a DICOM image without {', '.join(missing)}"
    try:
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=float)
        position = np.array([float(v) for v in ds.ImagePositionPatient], dtype=float)
        spacing = tuple(float(v) for v in ds.PixelSpacing)
        rows, cols = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError) as e:
        return f"a DICOM image with unreadable geometry ({e})"
    if orientation.shape != (6,) or position.shape != (3,) or len(spacing) != 2:
        return "a DICOM image with malformed geometry (ImageOrientationPatient, ImagePositionPatient, PixelSpacing)"
    instance = ds.get("InstanceNumber")
    series_number = ds.get("SeriesNumber")
    return _DicomImage(
        path=path,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        series_number=int(series_number) if series_number not in (None, "") else None,
        series_description=str(ds.get("SeriesDescription", "")),
        orientation=orientation,
        position=position,
        pixel_spacing_rc=(spacing[0], spacing[1]),
        rows=rows,
        cols=cols,
        trigger_time_ms=_optional_float(ds, "TriggerTime"),
        instance_number=int(instance) if instance not in (None, "") else None,
        slice_thickness_mm=_optional_float(ds, "SliceThickness"),
        patient_size_m=_optional_float(ds, "PatientSize"),
        patient_weight_kg=_optional_float(ds, "PatientWeight"),
    )


def _slice_normal(orientation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit row direction, column direction and slice normal (row x column) of an ImageOrientationPatient."""
    row_dir = orientation[:3] / np.linalg.norm(orientation[:3])
    col_dir = orientation[3:] / np.linalg.norm(orientation[3:])
    normal = np.cross(row_dir, col_dir)
    return row_dir, col_dir, normal / np.linalg.norm(normal)


def _group_by_orientation(images: list[_DicomImage]) -> list[list[_DicomImage]]:
    groups: list[tuple[np.ndarray, list[_DicomImage]]] = []
    for image in images:
        for reference, members in groups:
            if np.max(np.abs(reference - image.orientation)) < ORIENTATION_TOLERANCE:
                members.append(image)
                break
        else:
            groups.append((image.orientation, [image]))
    return [members for _, members in groups]


def _group_by_slice(images: list[_DicomImage], normal: np.ndarray) -> list[tuple[float, list[_DicomImage]]]:
    """Images clustered by their position along the slice normal, in increasing order."""
    slices: list[tuple[float, list[_DicomImage]]] = []
    for image in sorted(images, key=lambda im: float(im.position @ normal)):
        distance = float(image.position @ normal)
        if slices and distance - slices[-1][0] < SLICE_POSITION_TOLERANCE_MM:
            slices[-1][1].append(image)
        else:
            slices.append((distance, [image]))
    return slices


def _describe_series(images: list[_DicomImage]) -> list[str]:
    seen = {}
    for im in images:
        seen.setdefault(im.series_uid, f"{im.series_number} {im.series_description!r}".strip())
    return list(seen.values())


def _read_dicom_pixels(image: _DicomImage) -> np.ndarray:
    import pydicom

    try:
        from pydicom.pixels import apply_modality_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_modality_lut
    try:
        ds = pydicom.dcmread(str(image.path))
        pixels = ds.pixel_array
    except Exception as e:  # missing decoder, truncated file, ...
        raise CardiacInputError(f"{image.path}: cannot decode the DICOM pixel data ({e})") from e
    if pixels.shape != (image.rows, image.cols):
        raise CardiacInputError(
            f"{image.path}: expected a single-frame grey-scale image of {image.rows} x {image.cols} pixels, "
            f"found pixel data of shape {pixels.shape}"
        )
    return np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)


def _read_dicom_folder(folder: Path) -> Cine:
    """The short-axis cine among the DICOM images under ``folder``.

    Every DICOM image with geometry is considered; images are grouped by orientation, and the stack is the
    group with the most slice positions that have more than one phase (so a single-phase localiser or
    black-blood stack never wins over the cine), then the most positions, then the most images.
    """
    files = list(_walk_files(folder))
    images, skipped, duplicates, seen = [], {}, [], {}
    for path in files:
        header = _read_dicom_header(path)
        if isinstance(header, str):
            skipped[path] = header
        elif header.sop_instance_uid and header.sop_instance_uid in seen:
            duplicates.append((path, seen[header.sop_instance_uid]))
        else:
            seen[header.sop_instance_uid] = path
            images.append(header)
    if not images:
        example = next(iter(skipped.items()), None)
        raise CardiacInputError(
            f"{folder}: expected an ACDC patient folder (Info.cfg and patientNNN_frameMM.nii.gz files) or a "
            f"folder of DICOM images, found no readable DICOM image among {len(files)} file(s)"
            + (f"; e.g. {example[0]}: {example[1]}" if example else "")
        )
    warnings = []
    if duplicates:
        warnings.append(
            f"{folder}: {len(duplicates)} DICOM file(s) repeat an image already read (same SOPInstanceUID), "
            f"e.g. {duplicates[0][0]} = {duplicates[0][1]}; each image was used once"
        )
    # files that claim to be DICOM (the "DICM" marker) but gave no image: corrupt or incomplete headers
    image_like = {p: why for p, why in skipped.items() if _is_dicom_file(p)}
    unread = (
        f"; {len(image_like)} file(s) could not be used, e.g. {next(iter(image_like))}: {next(iter(image_like.values()))}"
        if image_like
        else ""
    )
    candidates = []
    for group in _group_by_orientation(images):
        _, _, normal = _slice_normal(group[0].orientation)
        slices = _group_by_slice(group, normal)
        cine_positions = sum(len(members) > 1 for _, members in slices)
        candidates.append(((cine_positions, len(slices), len(group)), group, slices))
    candidates.sort(key=lambda c: c[0], reverse=True)
    _, group, slices = candidates[0]
    orientation = group[0].orientation
    row_dir, col_dir, normal = _slice_normal(orientation)

    for distance, members in slices:
        series = {im.series_uid for im in members}
        if len(series) > 1:
            raise CardiacInputError(
                f"{folder}: the short-axis slice at {distance:.1f} mm along the normal has images from "
                f"several series ({', '.join(_describe_series(members))}), e.g. a repeated acquisition; "
                "keep only one of them in the folder"
            )
    reference = group[0]
    for im in group:
        if (im.rows, im.cols) != (reference.rows, reference.cols) or not np.allclose(
            im.pixel_spacing_rc, reference.pixel_spacing_rc, rtol=1e-4
        ):
            raise CardiacInputError(
                f"{im.path}: {im.rows} x {im.cols} pixels of {im.pixel_spacing_rc} mm, but {reference.path.name} "
                f"has {reference.rows} x {reference.cols} of {reference.pixel_spacing_rc} mm; all short-axis "
                "images must share one in-plane grid"
            )
    phase_counts = [len(members) for _, members in slices]
    if len(set(phase_counts)) != 1:
        details = ", ".join(
            f"{distance:.1f} mm: {len(members)} ({'; '.join(_describe_series(members))})"
            for distance, members in slices
        )
        raise CardiacInputError(
            f"{folder}: the short-axis slices have different numbers of phases ({details}); "
            "every slice of a cine must have the same number" + unread
        )
    have_times = all(im.trigger_time_ms is not None for im in group)

    def phase_order(im: _DicomImage):
        time = im.trigger_time_ms if have_times else 0.0
        return (time, im.instance_number if im.instance_number is not None else 0, im.path.name)

    ordered = [sorted(members, key=phase_order) for _, members in slices]  # [slice][phase]
    num_slices, num_frames = len(ordered), phase_counts[0]

    positions = np.array([members[0].position for members in ordered])
    if num_slices > 1:
        step = (positions[-1] - positions[0]) / (num_slices - 1)
        slice_spacing = float(np.linalg.norm(step))
        predicted = positions[0] + np.arange(num_slices)[:, np.newaxis] * step
        if np.linalg.norm(positions - predicted, axis=1).max() > 0.1 * slice_spacing:
            raise CardiacInputError(
                f"{folder}: the short-axis slices are not evenly spaced (positions along the normal "
                f"{[round(d, 2) for d, _ in slices]} mm); a cine needs a regular slice grid"
            )
    else:
        slice_spacing = reference.slice_thickness_mm or 0.0
        if slice_spacing <= 0:
            raise CardiacInputError(
                f"{reference.path}: one slice without SliceThickness: the slice spacing is missing"
            )
        step = normal * slice_spacing
    row_spacing, col_spacing = reference.pixel_spacing_rc
    _check_inplane_spacing(reference.path, (col_spacing, row_spacing), (reference.cols, reference.rows))
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_dir * col_spacing  # i (column index) runs along the row direction
    affine_lps[:3, 1] = col_dir * row_spacing  # j (row index) runs along the column direction
    affine_lps[:3, 2] = step
    affine_lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps  # DICOM LPS to NIfTI RAS

    data = np.empty((num_frames, num_slices, reference.rows, reference.cols), dtype=np.float32)
    for k, members in enumerate(ordered):
        for t, im in enumerate(members):
            data[t, k] = _read_dicom_pixels(im)

    trigger_times = None
    times_per_slice = None
    if have_times:
        times_per_slice = [[float(im.trigger_time_ms) for im in members] for members in ordered]
        # slices come from separate breath-holds with their own RR interval: the frame time is their mean
        trigger_times = [round(float(t), 3) for t in np.mean(times_per_slice, axis=0)]
    height = reference.patient_size_m * 100.0 if reference.patient_size_m else None
    weight = reference.patient_weight_kg or None
    return Cine(
        data=data,
        spacing_mm=(col_spacing, row_spacing, slice_spacing),
        affine=affine,
        frame_numbers=list(range(num_frames)),
        source=str(folder),
        trigger_times_ms=trigger_times,
        height_cm=height if height and height > 0 else None,
        weight_kg=weight if weight and weight > 0 else None,
        image_stems=[folder.resolve().name or "dicom"],
        extra={
            "dicom_files": [[str(members[t].path) for members in ordered] for t in range(num_frames)],
            "series_numbers": [members[0].series_number for members in ordered],
            "series_descriptions": [members[0].series_description for members in ordered],
            "slice_positions_mm": [round(distance, 4) for distance, _ in slices],
            "trigger_times_ms_per_slice": times_per_slice,
            "image_orientation_patient": [float(v) for v in orientation],
            "orientation_groups": [
                {
                    "orientation": [round(float(v), 3) for v in g[0].orientation],
                    "slice_positions": len(s),
                    "images": len(g),
                    "series": _describe_series(g),
                }
                for _, g, s in candidates
            ],
            "skipped_files": len(files) - len(images),
            "warnings": warnings,
        },
    )


# --------------------------------------------------------------------------------------------------
# public readers


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def read_cine(path: str | Path, height_cm: float | None = None, weight_kg: float | None = None) -> Cine:
    """Read a cine from an ACDC patient folder, a NIfTI file (3D: one frame, 4D: frames on the 4th axis) or
    a folder of DICOM files (the short-axis stack is found by orientation).

    ``height_cm``/``weight_kg`` override what the input says (ACDC ``Info.cfg``, DICOM PatientSize and
    PatientWeight). Raises :class:`CardiacInputError` naming the file and the problem.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        cine = _read_acdc_folder(path) if _is_acdc_folder(path) else _read_dicom_folder(path)
    elif is_nifti(path):
        cine = _read_nifti_cine(path)
    elif _is_dicom_file(path):
        raise CardiacInputError(
            f"{path}: one DICOM image; a cine is a series of images: give the folder that holds the "
            f"series ({path.parent})"
        )
    else:
        raise CardiacInputError(
            f"{path}: expected an ACDC patient folder, a NIfTI cine (.nii or .nii.gz, 3D or 4D) or a folder "
            "of DICOM files, found a file of another kind"
        )
    for name, value in (("height_cm", height_cm), ("weight_kg", weight_kg)):
        if value is not None:
            if not (np.isfinite(value) and value > 0):
                raise CardiacInputError(f"{name} must be a positive number, got {value}")
            setattr(cine, name, float(value))
    return cine


def read_volume(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """One 3D image as ``(slices, rows, cols)`` float32 with its ``(i, j, k)`` spacing (mm) and affine.

    Takes a 3D NIfTI file, or anything :func:`read_cine` reads that holds a single frame; a cine with
    several frames is an error (segment one frame; ``analyze`` takes the whole cine).
    """
    path = Path(path)
    _check_exists(path)
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
    array = np.ascontiguousarray(np.transpose(labels.astype(np.uint8), tuple(range(labels.ndim))[::-1]))
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
