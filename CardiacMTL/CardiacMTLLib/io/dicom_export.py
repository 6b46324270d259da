"""DICOM exports of a result: a Segmentation (SEG) of the label maps that references the source images, and
a Structured Report (TID 1500 measurement report) of the indices and the diagnosis, written with highdicom.

Both need the DICOM images the cine was read from (``cine.extra["dicom_files"][frame][slice]``, as
:func:`~CardiacMTLLib.io.dicom.read_dicom_folder` records them): the SEG's frames take their plane
positions and orientation from them, and both objects join the patient's study. A NIfTI or ACDC input has
no such images and is refused with a :class:`CardiacInputError`.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path

import numpy as np

from CardiacMTLLib import __version__
from CardiacMTLLib.atomic import staged_folder
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.acdc import is_acdc_folder
from CardiacMTLLib.io.nifti import is_nifti
from CardiacMTLLib.types import CLASS_NAMES, AnalysisResult, Cine, Label

SR_FILE = "sr.dcm"
# the project's own coding scheme for the indices and diagnosis classes that no standard code names exactly
CODING_SCHEME = "99CARDIACMTL"
MANUFACTURER = "CardiacMTL"
# UCUM codes and meanings of the units of the index keys ("LVEDV (mL)" -> mL)
UCUM_UNITS = {
    "mL": ("ml", "milliliter"),
    "%": ("%", "percent"),
    "g": ("g", "gram"),
    "mm": ("mm", "millimeter"),
    "cm": ("cm", "centimeter"),
    "kg": ("kg", "kilogram"),
    "m2": ("m2", "square meter"),
    "mL/m2": ("ml/m2", "milliliter per square meter"),
    "g/m2": ("g/m2", "gram per square meter"),
    "g/mL": ("g/ml", "gram per milliliter"),
    "": ("1", "no units"),
}
# frame numbers are positions on the time axis, not measurements
NOT_MEASUREMENTS = ("ED frame", "ES frame")
# type 2 attributes of the patient and study modules: present (maybe empty) in a scanner's images, but
# missing from some exports; the SEG and SR copy them, so an absent one is taken as empty
PATIENT_STUDY_ATTRIBUTES = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "StudyID", "AccessionNumber", "ReferringPhysicianName",
)  # fmt: skip
_KEY = re.compile(r"^(?P<name>.+?)(?: \((?P<unit>[^()]+)\))?$")


def _segment_codes():
    from pydicom.sr.codedict import codes

    return {
        Label.RV_CAVITY: codes.SCT.RightVentricle,
        Label.LV_MYOCARDIUM: codes.SCT.LeftVentricleMyocardium,
        Label.LV_CAVITY: codes.SCT.LeftVentricle,
    }


def source_files(cine: Cine) -> list[list[str]]:
    """``[frame][slice]`` the DICOM files ``cine`` was read from; :class:`CardiacInputError` without any."""
    files = cine.extra.get("dicom_files")
    if not files:
        raise CardiacInputError(
            f"{cine.source or 'cine'}: DICOM export needs a DICOM input (the SEG and SR reference the source "
            "images and join their study); this cine was not read from DICOM files here (NIfTI, an ACDC "
            "folder, or a volume already in Slicer: load the DICOM folder with the file button instead)"
        )
    if len(files) != cine.num_frames or any(len(f) != cine.num_slices for f in files):
        raise CardiacInputError(
            f"{cine.source}: expected {cine.num_frames} x {cine.num_slices} source DICOM files, found "
            f"{len(files)} x {len(files[0])}"
        )
    return files


def check_dicom_input(path: str | Path) -> None:
    """Refuse, before any work, a DICOM export of an input that cannot have source DICOM images (a NIfTI
    file or an ACDC folder); DICOM folders and zips are checked when read."""
    path = Path(path)
    if (path.is_file() and is_nifti(path)) or (path.is_dir() and is_acdc_folder(path)):
        raise CardiacInputError(
            f"{path}: DICOM export needs a DICOM input (the SEG and SR reference the source images); "
            "this is a NIfTI file or an ACDC folder"
        )


def read_source_headers(cine: Cine, frames: Sequence[int]) -> list:
    """The DICOM headers of the images of ``frames`` (positions on the time axis), frame by frame and slice
    by slice; from ``cine.extra["dicom_archive"]`` (a zip) when the cine was read from one."""
    import pydicom

    files = source_files(cine)
    archive = cine.extra.get("dicom_archive")
    headers = []
    try:
        zipped = zipfile.ZipFile(archive) if archive else None
        for t in frames:
            for name in files[t]:
                if zipped is not None:
                    data = io.BytesIO(zipped.read(name))
                    headers.append(pydicom.dcmread(data, stop_before_pixels=True))
                else:
                    headers.append(pydicom.dcmread(name, stop_before_pixels=True))
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise CardiacInputError(
            f"{cine.source}: cannot read the source DICOM images for the export ({e}); they must still be "
            "where the cine was read from"
        ) from e
    for header in headers:
        for keyword in PATIENT_STUDY_ATTRIBUTES:
            if keyword not in header:
                setattr(header, keyword, "")
    return headers


def study_identifiers(cine: Cine) -> dict[str, str]:
    """``{"patient_id", "study_id", "study_date"}`` of a DICOM input (those it has), else the ACDC
    patient's folder name as ``patient_id``; empty when the input names none."""
    if cine.extra.get("dicom_files"):
        header = read_source_headers(cine, [0])[0]
        found = {
            "patient_id": header.get("PatientID", ""),
            "study_id": header.get("StudyID", "") or header.get("AccessionNumber", ""),
            "study_date": header.get("StudyDate", ""),
        }
        return {k: str(v).strip() for k, v in found.items() if str(v).strip()}
    name = Path(str(cine.source)).name.split(".")[0]
    return {"patient_id": name} if re.match(r"^patient\d+", name) else {}


def study_file_stem(cine: Cine, default: str = "study") -> str:
    """A file-name stem for downloads of ``cine``'s results: its patient and study identifiers."""
    ids = study_identifiers(cine)
    parts = [ids[k] for k in ("patient_id", "study_id") if k in ids]
    stem = "_".join(parts) or Path(str(cine.source)).name.split(".")[0] or default
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or default


def _ed_es(result: AnalysisResult) -> list[int]:
    return sorted({result.ed_index, result.es_index})


def phase_name(result: AnalysisResult, t: int) -> str:
    """``"ED"``, ``"ES"`` or ``"frame<N>"``: what the SEG of frame position ``t`` is called."""
    if t == result.ed_index:
        return "ED"
    return "ES" if t == result.es_index else f"frame{result.cine.frame_numbers[t]}"


def _as_one_series(headers: list) -> list:
    """Copies of ``headers`` that highdicom takes as one series, with a frame of reference.

    A breath-hold cine is often one series per slice; highdicom builds a SEG from one series only, so the
    copies share the first image's series UID (the per-frame references name SOP instances, which stay
    right; :func:`_reference_series` writes the true series afterwards). Images without a frame of
    reference get one derived from their study, the same for every image of it.
    """
    import pydicom

    series = headers[0].SeriesInstanceUID
    copies = []
    for header in headers:
        copy = deepcopy(header)
        copy.SeriesInstanceUID = series
        if not header.get("FrameOfReferenceUID"):
            copy.FrameOfReferenceUID = pydicom.uid.generate_uid(entropy_srcs=[str(header.StudyInstanceUID)])
        copies.append(copy)
    return copies


def _reference_series(seg, headers: list) -> None:
    """The SEG's Referenced Series Sequence: every source image under its own series."""
    import pydicom

    by_series: dict[str, list] = {}
    for header in headers:
        by_series.setdefault(str(header.SeriesInstanceUID), []).append(header)
    items = []
    for uid, members in by_series.items():
        item = pydicom.Dataset()
        item.SeriesInstanceUID = uid
        instances = []
        for header in members:
            instance = pydicom.Dataset()
            instance.ReferencedSOPClassUID = header.SOPClassUID
            instance.ReferencedSOPInstanceUID = header.SOPInstanceUID
            instances.append(instance)
        item.ReferencedInstanceSequence = instances
        items.append(item)
    seg.ReferencedSeriesSequence = items
    if "FrameOfReferenceUID" in headers[0]:
        seg.FrameOfReferenceUID = headers[0].FrameOfReferenceUID


def segmentation_dataset(result: AnalysisResult, frame: int, series_uid: str | None = None):
    """A highdicom ``Segmentation`` of ``result.labels[frame]`` (a position on the time axis): one binary
    segment per structure of :class:`Label`, one DICOM frame per slice and segment, each referencing the
    source image of its slice. One instance per cardiac phase: a SEG holds one plane per position."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    headers = read_source_headers(result.cine, [frame])
    algorithm = hd.AlgorithmIdentificationSequence(
        name="CardiacMTL", version=__version__, family=codes.DCM.ArtificialIntelligence
    )
    segments = [
        hd.seg.SegmentDescription(
            segment_number=int(label),
            segment_label=label.display_name,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=code,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for label, code in _segment_codes().items()
    ]
    phase = phase_name(result, frame)
    seg = hd.seg.Segmentation(
        source_images=_as_one_series(headers),
        pixel_array=np.ascontiguousarray(result.labels[frame], dtype=np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=series_uid or hd.UID(),
        series_number=9001,
        sop_instance_uid=hd.UID(),
        instance_number=frame + 1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="CardiacMTL cine segmentation",
        software_versions=__version__,
        device_serial_number="0",
        content_description=f"{phase} (frame {result.cine.frame_numbers[frame]})",
        content_label=phase.upper()[:16],
        series_description="CardiacMTL segmentation",
        omit_empty_frames=False,
    )
    _reference_series(seg, headers)
    return seg


def measurement_items(indices: dict) -> list[tuple[str, str, float, str]]:
    """``(key, name, value, ucum unit)`` of every index with a value (frame numbers left out)."""
    items = []
    for key, value in indices.items():
        if key in NOT_MEASUREMENTS or value is None:
            continue
        match = _KEY.match(key)
        name, unit = match["name"], match["unit"] or ""
        if unit not in UCUM_UNITS:  # "RVEDV/LVEDV": the slash is the name's, it has no unit
            name, unit = key, ""
        items.append((key, name, float(value), unit))
    return items


def measurement_report(result: AnalysisResult, segmentations: Sequence = ()):
    """A highdicom ``Comprehensive3DSR`` holding a TID 1500 measurement report: every index with a value (with
    its UCUM unit) and the diagnosis class as a finding; evidence: the ED/ES source images (and the SEG)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = read_source_headers(result.cine, _ed_es(result))
    measurements = [
        hd.sr.Measurement(
            name=hd.sr.CodedConcept(value=key[:16], scheme_designator=CODING_SCHEME, meaning=name),
            value=value,
            unit=hd.sr.CodedConcept(
                value=UCUM_UNITS[unit][0], scheme_designator="UCUM", meaning=UCUM_UNITS[unit][1]
            ),
        )
        for key, name, value, unit in measurement_items(result.indices)
    ]
    diagnosis = result.diagnosis or {}
    evaluations = []
    if diagnosis.get("class"):
        cls = diagnosis["class"]
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=codes.DCM.Finding,
                value=hd.sr.CodedConcept(
                    value=cls, scheme_designator=CODING_SCHEME, meaning=CLASS_NAMES[cls]
                ),
            )
        )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="cardiac cine indices"),
        measurements=measurements,
        qualitative_evaluations=evaluations or None,
        algorithm_id=hd.sr.AlgorithmIdentification(name="CardiacMTL", version=__version__),
        finding_sites=[hd.sr.FindingSite(codes.SCT.Heart)],
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=hd.UID(), name="CardiacMTL", model_name=__version__
            ),
        )
    )
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.SCT.MagneticResonanceImagingOfHeart,
        imaging_measurements=[group],
        title=codes.DCM.ImagingMeasurementReport,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=sources + list(segmentations),
        content=report,
        series_instance_uid=hd.UID(),
        series_number=9002,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="CardiacMTL measurements",
        is_complete=True,
    )


def dicom_exports(result: AnalysisResult, frames: Sequence[int] | None = None) -> dict:
    """``{file name: pydicom dataset}``: ``seg_<phase>.dcm`` per frame position of ``frames`` (default ED and
    ES; one SEG series) and ``sr.dcm``; :class:`CardiacInputError` for a non-DICOM input."""
    import highdicom as hd

    source_files(result.cine)  # refuse before anything is built
    frames = _ed_es(result) if frames is None else list(frames)
    series = hd.UID()
    segs = {f"seg_{phase_name(result, t)}.dcm": segmentation_dataset(result, t, series) for t in frames}
    return {**segs, SR_FILE: measurement_report(result, list(segs.values()))}


def write_dicom_exports(
    result: AnalysisResult,
    out_dir: str | Path,
    overwrite: bool = False,
    inputs: Sequence[str | Path] = (),
    frames: Sequence[int] | None = None,
) -> Path:
    """Write the SEG files and ``sr.dcm`` of ``result`` into ``out_dir`` under the output policy (staged,
    moved into place when all are complete)."""
    datasets = dicom_exports(result, frames)
    with staged_folder(out_dir, inputs=inputs, overwrite=overwrite) as staging:
        for name, dataset in datasets.items():
            dataset.save_as(staging / name, enforce_file_format=True)
    return Path(out_dir).resolve()


def dicom_export_bytes(result: AnalysisResult, frames: Sequence[int] | None = None) -> dict[str, bytes]:
    """The files of :func:`dicom_exports` as bytes (for a download)."""
    out = {}
    for name, dataset in dicom_exports(result, frames).items():
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        out[name] = buffer.getvalue()
    return out
