"""A cine written as a DICOM study: one MR image per slice and phase, one series per slice (as scanners
export a breath-hold cine), with the geometry of the cine's affine. For tests and demonstrations of the
DICOM path on images with exact ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from CardiacMTLLib.types import Cine


def write_cine_dicom(cine: Cine, folder: str | Path, rr_interval_ms: float = 900.0) -> list[Path]:
    """Write ``cine`` under ``folder/series<k>/IM<t>.dcm`` and return the files, slice by slice.

    Pixel values are scaled to 0-4000 and stored as 16-bit integers with a rescale slope, so a reader
    gets back the cine's intensities up to that scaling; positions follow the affine (RAS to DICOM LPS).
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder = Path(folder)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ cine.affine
    col_spacing, row_spacing, slice_spacing = cine.spacing_mm
    row_dir = lps[:3, 0] / np.linalg.norm(lps[:3, 0])
    col_dir = lps[:3, 1] / np.linalg.norm(lps[:3, 1])
    high = float(cine.data.max()) or 1.0
    study_uid = generate_uid()
    files = []
    for k in range(cine.num_slices):
        series_uid = generate_uid()
        position = lps[:3, 3] + k * lps[:3, 2]
        for t in range(cine.num_frames):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.Modality = "MR"
            ds.PatientID = "synthetic"
            if cine.height_cm:
                ds.PatientSize = round(cine.height_cm / 100.0, 3)
            if cine.weight_kg:
                ds.PatientWeight = round(cine.weight_kg, 1)
            if cine.sex is not None:
                ds.PatientSex = cine.sex
            ds.SeriesNumber = 100 + k
            ds.SeriesDescription = f"sax cine slice {k}"
            ds.InstanceNumber = t + 1
            ds.ImageOrientationPatient = [round(float(v), 8) for v in (*row_dir, *col_dir)]
            ds.ImagePositionPatient = [round(float(v), 6) for v in position]
            ds.PixelSpacing = [float(row_spacing), float(col_spacing)]
            ds.SliceThickness = float(slice_spacing)
            ds.TriggerTime = round(t * rr_interval_ms / cine.num_frames, 3)
            pixels = np.clip(np.round(cine.data[t, k] / high * 4000.0), 0, 65535).astype(np.uint16)
            ds.RescaleSlope = high / 4000.0
            ds.RescaleIntercept = 0
            ds.Rows, ds.Columns = pixels.shape
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 0
            ds.PixelData = pixels.tobytes()
            path = folder / f"series{k:02d}" / f"IM{t:04d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
            files.append(path)
    return files
