"""DICOM pixel data read from the bytes the header pass located (one parse of each file) equals pydicom's
decoding: unused high bits cleared or sign-extended, implicit and explicit VR; anything else (compressed,
a Pixel Data element that is not where it should be) is decoded by pydicom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from CardiacMTLLib.io import dicom
from CardiacMTLLib.synthetic.dicom import write_cine_dicom
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dicom-pixels")
    case = generate_synthetic_cine(seed=2, num_frames=3, shape=(40, 36, 3))
    return folder, write_cine_dicom(case.cine, folder)


def _header(path):
    header = dicom._read_dicom_header(path)
    assert not isinstance(header, str), header
    return header


def _pydicom_values(path) -> np.ndarray:
    ds = pydicom.dcmread(str(path))
    return np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float32)


def _rewrite(path, syntax, stored: int = 16, signed: bool = False, junk: bool = False):
    ds = pydicom.dcmread(str(path))
    values = ds.pixel_array.astype(np.int32) % (1 << (stored - 1 if signed else stored))
    if signed:
        values -= 1 << (stored - 2)  # some negative values
    raw = values.astype(np.int16 if signed else np.uint16)
    if junk and stored < 16:  # garbage in the bits above Bits Stored, which readers must ignore
        raw = (raw.view(np.uint16) | np.uint16(0xF000 & ~((1 << stored) - 1))).view(raw.dtype)
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = stored, stored - 1, int(signed)
    ds.PixelData = raw.tobytes()
    if syntax == RLELossless:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.compress(RLELossless)
    else:
        ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(str(path), enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian)


def test_the_generator_s_files_are_read_without_a_second_parse_and_equal_pydicom(written):
    _, files = written
    for path in files:
        header = _header(path)
        assert dicom._native_pixels(header) is not None
        assert np.array_equal(dicom._read_dicom_pixels(header), _pydicom_values(path))


@pytest.mark.parametrize(
    "syntax, stored, signed",
    [
        (ExplicitVRLittleEndian, 12, False),
        (ImplicitVRLittleEndian, 12, False),
        (ExplicitVRLittleEndian, 12, True),
        (ImplicitVRLittleEndian, 10, True),
    ],
)
def test_unused_high_bits_are_cleared_or_sign_extended_as_pydicom_does(
    written, tmp_path, syntax, stored, signed
):
    _, files = written
    path = tmp_path / "image.dcm"
    path.write_bytes(files[0].read_bytes())
    _rewrite(path, syntax, stored, signed, junk=True)
    header = _header(path)
    assert dicom._native_pixels(header) is not None
    got, expected = dicom._read_dicom_pixels(header), _pydicom_values(path)
    assert np.array_equal(got, expected)
    if signed:
        assert (expected < 0).any()


def test_compressed_or_misplaced_pixel_data_is_left_to_pydicom(written, tmp_path):
    _, files = written
    path = tmp_path / "rle.dcm"
    path.write_bytes(files[1].read_bytes())
    _rewrite(path, RLELossless)
    header = _header(path)
    assert dicom._native_pixels(header) is None
    assert np.array_equal(dicom._read_dicom_pixels(header), _pydicom_values(path))
    # an offset that does not point at the Pixel Data element: no raw read, pydicom decodes the file
    header = _header(files[1])
    header.pixel_offset -= 2
    assert dicom._native_pixels(header) is None
    assert np.array_equal(dicom._read_dicom_pixels(header), _pydicom_values(files[1]))


def test_a_truncated_pixel_data_element_is_a_one_line_error_naming_the_file(written, tmp_path):
    _, files = written
    path = tmp_path / "cut.dcm"
    data = files[2].read_bytes()
    path.write_bytes(data[: len(data) - 100])
    header = _header(path)
    assert dicom._native_pixels(header) is None
    with pytest.raises(dicom.CardiacInputError, match="cut.dcm: cannot decode the DICOM pixel data"):
        dicom._read_dicom_pixels(header)
