"""The one-pass header reader (io/dicom_header.py) gives every image exactly what pydicom's reading gives:
the same geometry, timing, patient and series fields, the same Pixel Data offset and the same modality
values, on the generator's files, on rewritten variants (implicit VR, nested sequences of undefined
length, empty and padded values) and on the biv-me study; and it leaves to pydicom what it does not read
exactly as pydicom does."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from CardiacMTLLib.io import dicom
from CardiacMTLLib.io.dicom_header import HEAD_BYTES, read_cine_fields
from CardiacMTLLib.synthetic.dicom import write_cine_dicom
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dicom-header")
    case = generate_synthetic_cine(seed=3, num_frames=2, shape=(40, 36, 3))
    case.cine.height_cm, case.cine.weight_kg, case.cine.sex = 172.0, 70.0, "F"
    return write_cine_dicom(case.cine, folder)


def _by_pydicom(path):
    with open(path, "rb") as f:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        offset = f.tell()
    return dicom._image_of(path, dicom._DatasetFields(ds), offset)


def _assert_same_image(path):
    """The fast reading of ``path`` equals pydicom's, field by field and in its modality values."""
    fast = read_cine_fields(path)
    assert fast is not None, f"{path} was left to pydicom"
    quick, slow = dicom._image_of(path, *fast), _by_pydicom(path)
    assert not isinstance(quick, str) and not isinstance(slow, str)
    for name in slow.__dataclass_fields__:
        if name != "header":
            a, b = getattr(slow, name), getattr(quick, name)
            assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, name
    assert np.array_equal(dicom._read_dicom_pixels(quick), dicom._read_dicom_pixels(slow))


def _rewrite(source, path, change, implicit=False):
    ds = pydicom.dcmread(str(source))
    change(ds)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.save_as(str(path), enforce_file_format=True, implicit_vr=implicit)
    return path


def _nested_private_sequence(ds):
    """A private sequence of undefined length whose item (of undefined length) holds another one."""
    inner = Dataset()
    inner.add_new(0x00091010, "LO", "inner")
    inner.add_new(0x00091011, "OB", b"\x01\x02\xfe\xff")
    inner_item = Dataset()
    inner_item.add_new(0x00091012, "SQ", Sequence([inner]))
    outer = Dataset()
    outer.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00091001, "SQ", Sequence([inner_item, Dataset()]))
    for element in (ds[0x00091001], inner_item[0x00091012]):
        element.is_undefined_length = True
        for item in element.value:
            item.is_undefined_length_sequence_item = True
    # an icon image sequence (defined lengths), as scanners write
    icon = Dataset()
    icon.Rows, icon.Columns = 2, 2
    icon.add_new(0x7FE00010, "OB", b"\x00" * 4)
    ds.IconImageSequence = Sequence([icon])


def _padded_and_empty(ds):
    ds.PatientSex = ""
    ds.PatientWeight = None
    ds.SeriesDescription = "sax  "
    ds.TriggerTime = " 12.5"
    ds.SliceThickness = "8 "


def _long_private_element(ds):
    """A header longer than the first bytes the reader looks at (a private blob before the pixels)."""
    ds.add_new(0x00190010, "LO", "ACME")
    ds.add_new(0x00191001, "OB", bytes(range(256)) * (HEAD_BYTES // 256 + 64))


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize(
    "change", [lambda ds: None, _nested_private_sequence, _padded_and_empty, _long_private_element]
)
def test_the_fast_reading_equals_pydicom_s(written, tmp_path, implicit, change):
    for k, source in enumerate(written[:3]):
        _assert_same_image(_rewrite(source, tmp_path / f"image{k}.dcm", change, implicit))


def test_the_generator_s_files_read_fast_with_their_rescale(written):
    for path in written:
        _assert_same_image(path)
    fields, _ = read_cine_fields(written[0])
    assert fields["RescaleSlope"] != 1.0 and fields["PatientSex"] == "F"


def _latin1_description(ds):
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SeriesDescription = "Kurzachse Größe"


def _lut(ds):
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item.add_new(0x00283006, "US", [0, 10, 20, 30])  # LUT Data
    ds.ModalityLUTSequence = Sequence([item])


@pytest.mark.parametrize(
    "change",
    [
        _latin1_description,  # another character set's text
        _lut,  # a Modality LUT
        lambda ds: setattr(ds, "SeriesDescription", ["a", "b"]),  # several values
        lambda ds: setattr(ds, "PixelSpacing", ["1.5", "1.5"]),  # made "1,5": not a DICOM number
        lambda ds: delattr(ds, "ImagePositionPatient"),  # missing geometry: pydicom's message
        lambda ds: setattr(ds, "RescaleSlope", None),  # a rescale without a value
    ],
)
def test_what_it_does_not_read_exactly_is_left_to_pydicom(written, tmp_path, change):
    path = _rewrite(written[0], tmp_path / "odd.dcm", change)
    path.write_bytes(path.read_bytes().replace(b"1.5\\1.5", b"1,5\\1,5"))
    assert read_cine_fields(path) is None
    header = dicom._read_dicom_header(path)
    slow = _by_pydicom(path)
    if isinstance(slow, str):
        assert header == slow
    else:
        assert header.series_description == slow.series_description
        assert np.array_equal(header.position, slow.position)


def test_compressed_big_and_foreign_files_are_left_to_pydicom(written, tmp_path):
    ds = pydicom.dcmread(str(written[1]))
    ds.compress(RLELossless)
    ds.save_as(str(tmp_path / "rle.dcm"), enforce_file_format=True)
    assert read_cine_fields(tmp_path / "rle.dcm") is None
    assert not isinstance(dicom._read_dicom_header(tmp_path / "rle.dcm"), str)
    (tmp_path / "notes.txt").write_text("not an image\n" * 20)
    assert read_cine_fields(tmp_path / "notes.txt") is None
    assert "not a readable DICOM file" in dicom._read_dicom_header(tmp_path / "notes.txt")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(written[2].read_bytes()[:400])  # ends inside the header
    assert read_cine_fields(cut) is None


def test_every_image_of_the_bivme_study_reads_fast_and_equals_pydicom(bivme_dicom_dir):
    files = sorted(dicom._walk_files(bivme_dicom_dir))
    assert len(files) > 200
    for path in files:
        _assert_same_image(path)


def test_explicit_vr_under_an_implicit_transfer_syntax_is_left_to_pydicom(written, tmp_path):
    """pydicom notices a data set encoded otherwise than its transfer syntax says and reads it anyway;
    the fast reader does not guess."""
    path = tmp_path / "mislabelled.dcm"
    data = written[0].read_bytes()
    explicit = b"1.2.840.10008.1.2.1\0"
    assert explicit in data
    path.write_bytes(data.replace(explicit, b"1.2.840.10008.1.2\0\0\0", 1))
    assert read_cine_fields(path) is None
    header = dicom._read_dicom_header(path)
    assert not isinstance(header, str)
    assert np.array_equal(header.position, _by_pydicom(written[0]).position)
