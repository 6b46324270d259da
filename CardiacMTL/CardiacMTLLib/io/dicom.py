"""DICOM studies: the short-axis cine among a folder's images, assembled by orientation, slice position and trigger time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.dicom_header import NATIVE_TRANSFER_SYNTAXES, read_cine_fields
from CardiacMTLLib.io.nifti import check_inplane_spacing
from CardiacMTLLib.io.patient import body_size_problem
from CardiacMTLLib.types import Cine

# Two DICOM images belong to the same stack when their direction cosines differ by less than this
# (about 0.6 degrees): far below the angle between any two planned cardiac views.
ORIENTATION_TOLERANCE = 1e-2
# Images whose positions along the slice normal differ by less than this (mm) are the same slice.
SLICE_POSITION_TOLERANCE_MM = 0.05


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
    patient_sex: str | None
    # the header elements as read (no pixel data: a dict from :func:`read_cine_fields`, or
    # :class:`_DatasetFields` of pydicom's reading) and the file offset of its Pixel Data element, from
    # which uncompressed pixels are read without parsing the file a second time (:func:`_native_pixels`)
    header: object = None
    pixel_offset: int | None = None


# The pixels of the uncompressed little-endian transfer syntaxes (NATIVE_TRANSFER_SYNTAXES: implicit,
# explicit VR) are the bytes of the Pixel Data element, read directly; any other (compressed,
# big-endian) is decoded by pydicom
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


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


class _DatasetFields:
    """A header pydicom read, seen as the mapping from keyword to value that :func:`read_cine_fields`
    gives (the transfer syntax from the file meta), so that one assembly reads both."""

    def __init__(self, ds):
        self.dataset = ds

    def __contains__(self, keyword: str) -> bool:
        if keyword == "TransferSyntaxUID":
            return "TransferSyntaxUID" in (getattr(self.dataset, "file_meta", None) or {})
        return keyword in self.dataset

    def get(self, keyword: str, default=None):
        if keyword == "TransferSyntaxUID":
            return getattr(getattr(self.dataset, "file_meta", None), "TransferSyntaxUID", default)
        return self.dataset.get(keyword, default)

    def __getitem__(self, keyword: str):
        return getattr(self.dataset, keyword)


def _read_dicom_header(path: Path) -> _DicomImage | str:
    """The geometry of one DICOM image, or why the file is not a single-frame image with geometry.

    The elements are read by :func:`read_cine_fields` (one pass over the bytes of the common file), else
    by pydicom."""
    fast = read_cine_fields(path)
    if fast is not None:
        return _image_of(path, *fast)
    if not is_dicom_file(path):  # as pydicom says of a file without the marker, without importing it
        return "not a readable DICOM file (no 'DICM' prefix at byte 128: not a DICOM Part 10 file)"
    import pydicom

    try:
        with open(path, "rb") as f:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            pixel_offset = f.tell()  # pydicom stops at the start of the Pixel Data element
    except Exception as e:  # pydicom raises many types on non-DICOM or corrupt files; such files are skipped
        return f"not a readable DICOM file ({type(e).__name__}: {str(e)[:80]})"
    return _image_of(path, _DatasetFields(ds), pixel_offset)


def _image_of(path: Path, ds, pixel_offset: int) -> _DicomImage | str:
    """The :class:`_DicomImage` of a header's elements (``ds``: keyword to value), or what is missing."""
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
        orientation = np.array([float(v) for v in ds["ImageOrientationPatient"]], dtype=float)
        position = np.array([float(v) for v in ds["ImagePositionPatient"]], dtype=float)
        spacing = tuple(float(v) for v in ds["PixelSpacing"])
        rows, cols = int(ds["Rows"]), int(ds["Columns"])
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
        patient_sex=str(ds.get("PatientSex", "") or "").strip().upper() or None,
        header=ds,
        pixel_offset=pixel_offset,
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


def _native_pixels(image: _DicomImage) -> np.ndarray | None:
    """The stored values of an uncompressed little-endian single-frame grey-scale image, read from the
    bytes of its Pixel Data element at the offset its header pass found, as pydicom decodes them (bits
    beyond Bits Stored cleared, or the sign extended from them); ``None`` where the image is anything else
    or the element is not where and what it should be (pydicom then reads the file)."""
    ds = image.header
    if ds is None or image.pixel_offset is None:
        return None
    syntax = str(ds.get("TransferSyntaxUID", "") or "")
    bits, stored = ds.get("BitsAllocated"), ds.get("BitsStored")
    if (
        syntax not in NATIVE_TRANSFER_SYNTAXES
        or int(ds.get("SamplesPerPixel", 1) or 1) != 1
        or int(ds.get("NumberOfFrames", 1) or 1) != 1
        or bits not in (8, 16)
        or stored is None
        or not 0 < int(stored) <= int(bits)
        or ds.get("PixelRepresentation") not in (0, 1)
    ):
        return None
    dtype = np.dtype(f"<{'i' if ds.get('PixelRepresentation') else 'u'}{bits // 8}")
    expected = image.rows * image.cols * dtype.itemsize
    explicit = syntax == NATIVE_TRANSFER_SYNTAXES[1]
    with open(image.path, "rb") as f:
        f.seek(image.pixel_offset)
        head = f.read(12 if explicit else 8)
        if len(head) < 8 or head[:4] != PIXEL_DATA_TAG:
            return None
        if explicit:
            if len(head) < 12 or head[4:6] not in (b"OW", b"OB"):
                return None
            length = int.from_bytes(head[8:12], "little")
        else:
            length = int.from_bytes(head[4:8], "little")
        if length == 0xFFFFFFFF or length < expected:  # encapsulated, or too short
            return None
        data = f.read(expected)
    if len(data) != expected:
        return None
    pixels = np.frombuffer(data, dtype=dtype).reshape(image.rows, image.cols).copy()
    shift = int(bits) - int(stored)
    if shift:
        np.left_shift(pixels, shift, out=pixels)
        np.right_shift(pixels, shift, out=pixels)
    return pixels


def _read_dicom_pixels(image: _DicomImage) -> np.ndarray:
    """The modality values (rescaled stored values) of one image, float32."""
    try:
        pixels = _native_pixels(image)
        ds = image.header.dataset if isinstance(image.header, _DatasetFields) else None
        if pixels is None:
            import pydicom

            ds = pydicom.dcmread(str(image.path))
            pixels = ds.pixel_array
    except Exception as e:  # missing decoder, truncated file, ...
        raise CardiacInputError(f"{image.path}: cannot decode the DICOM pixel data ({e})") from e
    if pixels.shape != (image.rows, image.cols):
        raise CardiacInputError(
            f"{image.path}: expected a single-frame grey-scale image of {image.rows} x {image.cols} pixels, "
            f"found pixel data of shape {pixels.shape}"
        )
    if ds is not None:  # pydicom read the header: its own Modality LUT or rescale
        try:
            from pydicom.pixels import apply_modality_lut
        except ImportError:  # pydicom < 3
            from pydicom.pixel_data_handlers.util import apply_modality_lut
        return np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)
    return np.asarray(_rescaled(pixels, image.header), dtype=np.float32)


def _rescaled(pixels: np.ndarray, fields: dict) -> np.ndarray:
    """pydicom's ``apply_modality_lut`` for a header without a Modality LUT (:func:`read_cine_fields`
    leaves those to pydicom): the stored values times Rescale Slope plus Rescale Intercept, in double
    precision, when both are given."""
    if "RescaleSlope" in fields and "RescaleIntercept" in fields:  # one number each (read_cine_fields)
        out = pixels.astype(np.float64) * fields["RescaleSlope"]
        out += fields["RescaleIntercept"]
        return out
    return pixels


def _one_patient_and_study(folder: Path, images: list[_DicomImage]) -> None:
    """Refuse a stack whose images name several patients or studies (a folder holding two patients' or two
    visits' scans would otherwise be assembled into one heart)."""
    for keyword, what in (("PatientID", "patients"), ("StudyInstanceUID", "studies")):
        found: dict[str, Path] = {}
        for im in images:
            value = str(im.header.get(keyword, "") or "").strip() if im.header is not None else ""
            if value:
                found.setdefault(value, im.path)
        if len(found) > 1:
            examples = "; ".join(f"{value!r} in {path}" for value, path in list(found.items())[:2])
            raise CardiacInputError(
                f"{folder}: the short-axis images come from {len(found)} {what} ({keyword} {examples}); "
                "a cine is one study of one patient: keep only that study's files in the folder"
            )


def read_dicom_folder(folder: Path) -> Cine:
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
    image_like = {p: why for p, why in skipped.items() if is_dicom_file(p)}
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
    _one_patient_and_study(folder, group)
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
    check_inplane_spacing(reference.path, (col_spacing, row_spacing), (reference.cols, reference.rows))
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
    # 0 says "not measured"; a size no person has (centimetres in the metres field) is left out, and said
    for tag, quantity, value, shown in (
        ("PatientSize", "height", height, reference.patient_size_m),
        ("PatientWeight", "weight", weight, weight),
    ):
        problem = value is not None and value > 0 and body_size_problem(quantity, value)
        if problem:
            warnings.append(f"{reference.path}: {tag} {shown:g} is not used: a {quantity} of {problem}")
            height, weight = (None, weight) if quantity == "height" else (height, None)
    return Cine(
        data=data,
        spacing_mm=(col_spacing, row_spacing, slice_spacing),
        affine=affine,
        frame_numbers=list(range(num_frames)),
        source=str(folder),
        trigger_times_ms=trigger_times,
        height_cm=height if height and height > 0 else None,
        weight_kg=weight if weight and weight > 0 else None,
        sex=reference.patient_sex if reference.patient_sex in ("M", "F") else None,
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


def is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False
