"""Readers and writers: NIfTI, ACDC folders, DICOM series, landmark files."""
