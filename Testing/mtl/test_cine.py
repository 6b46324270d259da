"""Cine I/O: ACDC folders, NIfTI 3D/4D, DICOM folders (real and generated oblique stacks), writers, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

import CardiacMTLLib.io.acdc as acdc_module
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import read_cine, read_volume
from CardiacMTLLib.io.nifti import read_nifti, read_nifti_volume, write_cine_nifti, write_label_map
from CardiacMTLLib.types import Cine

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ACDC = SHARED_DATA / "acdc"
BIVME_DICOM = SHARED_DATA / "bivme_patient1" / "dicom"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def oblique_affine(spacing=(1.5, 1.25, 8.0), origin=(-20.0, 35.0, 12.5)) -> np.ndarray:
    """An (i, j, k) -> RAS affine with rotated axes, as a real short-axis stack has."""
    a, b = np.deg2rad(30.0), np.deg2rad(-50.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def save_nifti(array: np.ndarray, path: Path, affine: np.ndarray | None = None) -> Path:
    nib.Nifti1Image(array, np.eye(4) if affine is None else affine).to_filename(str(path))
    return path


# --------------------------------------------------------------------------------------------------
# real DICOM study


@pytest.fixture(scope="module")
def bivme_cine() -> Cine:
    if not BIVME_DICOM.is_dir():
        pytest.skip(f"biv-me DICOM study not found at {BIVME_DICOM} (a fresh clone has no ../shared/data)")
    return read_cine(BIVME_DICOM)


@pytest.fixture(scope="module")
def bivme_short_axis_headers() -> list[list[Dataset]]:
    """The short-axis headers found independently of the reader: ``[slice][phase]``, base order by normal."""
    if not BIVME_DICOM.is_dir():
        pytest.skip(f"biv-me DICOM study not found at {BIVME_DICOM}")
    by_orientation: dict[tuple, list[Dataset]] = {}
    for path in sorted(p for p in BIVME_DICOM.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ds.filename = str(path)
        by_orientation.setdefault(tuple(np.round(np.array(ds.ImageOrientationPatient, float), 3)), []).append(
            ds
        )
    group = max(by_orientation.values(), key=lambda g: len({tuple(d.ImagePositionPatient) for d in g}))
    iop = np.array(group[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    by_series: dict[str, list[Dataset]] = {}
    for ds in group:
        by_series.setdefault(ds.SeriesInstanceUID, []).append(ds)
    stacks = sorted(
        by_series.values(), key=lambda s: float(np.array(s[0].ImagePositionPatient, float) @ normal)
    )
    return [sorted(s, key=lambda d: float(d.TriggerTime)) for s in stacks]


@pytest.mark.data
def test_dicom_study_reads_as_one_short_axis_cine_of_25_frames_by_6_slices(
    bivme_cine, bivme_short_axis_headers
):
    headers = bivme_short_axis_headers
    first = headers[0][0]
    assert bivme_cine.data.shape == (25, 6, int(first.Rows), int(first.Columns))
    assert bivme_cine.data.dtype == np.float32
    assert bivme_cine.frame_numbers == list(range(25))
    assert bivme_cine.image_stems == ["dicom"]
    assert sorted(bivme_cine.extra["series_numbers"]) == sorted(int(s[0].SeriesNumber) for s in headers)
    # the study holds six orientations: the short-axis stack and five single-slice long-axis views
    groups = bivme_cine.extra["orientation_groups"]
    assert len(groups) == 6 and groups[0]["slice_positions"] == 6
    assert all(g["slice_positions"] == 1 for g in groups[1:])


@pytest.mark.data
def test_dicom_trigger_times_increase_and_spacing_comes_from_the_header(bivme_cine, bivme_short_axis_headers):
    times = np.array(bivme_cine.trigger_times_ms)
    assert times[0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(times) > 0)
    per_slice = np.array(bivme_cine.extra["trigger_times_ms_per_slice"])
    expected = np.array([[float(d.TriggerTime) for d in s] for s in bivme_short_axis_headers])
    np.testing.assert_allclose(per_slice, expected, atol=1e-6)

    row_spacing, col_spacing = (float(v) for v in bivme_short_axis_headers[0][0].PixelSpacing)
    assert bivme_cine.spacing_mm[0] == pytest.approx(col_spacing, abs=1e-6)
    assert bivme_cine.spacing_mm[1] == pytest.approx(row_spacing, abs=1e-6)
    assert bivme_cine.spacing_mm[0] == pytest.approx(1.40625, abs=1e-4)
    # the slice spacing is the distance between neighbouring slice positions, not SliceThickness
    positions = np.array([np.array(s[0].ImagePositionPatient, float) for s in bivme_short_axis_headers])
    gaps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert bivme_cine.spacing_mm[2] == pytest.approx(float(gaps.mean()), abs=1e-3)
    assert bivme_cine.voxel_volume_ml == pytest.approx(
        col_spacing * row_spacing * gaps.mean() / 1000.0, rel=1e-4
    )


@pytest.mark.data
def test_dicom_affine_puts_every_voxel_corner_where_the_headers_say(bivme_cine, bivme_short_axis_headers):
    for k, stack in enumerate(bivme_short_axis_headers):
        ds = stack[0]
        ipp_ras = LPS_TO_RAS @ np.array(ds.ImagePositionPatient, float)
        np.testing.assert_allclose((bivme_cine.affine @ [0, 0, k, 1])[:3], ipp_ras, atol=1e-3)
        iop = np.array(ds.ImageOrientationPatient, float)
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        i, j = int(ds.Columns) - 1, int(ds.Rows) - 1
        far_corner_lps = (
            np.array(ds.ImagePositionPatient, float) + i * col_spacing * iop[:3] + j * row_spacing * iop[3:]
        )
        np.testing.assert_allclose(
            (bivme_cine.affine @ [i, j, k, 1])[:3], LPS_TO_RAS @ far_corner_lps, atol=1e-3
        )


@pytest.mark.data
def test_dicom_pixels_are_placed_by_slice_position_and_trigger_time(bivme_cine, bivme_short_axis_headers):
    for t, k in ((0, 0), (7, 3), (24, 5)):
        ds = pydicom.dcmread(bivme_short_axis_headers[k][t].filename)
        expected = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        np.testing.assert_array_equal(bivme_cine.frame(t)[k], expected.astype(np.float32))
        assert Path(bivme_cine.extra["dicom_files"][t][k]) == Path(ds.filename)


# --------------------------------------------------------------------------------------------------
# generated oblique DICOM stacks


def write_dicom_image(
    path: Path,
    series_uid: str,
    series_number: int,
    iop: np.ndarray,
    ipp: np.ndarray,
    trigger_time: float,
    pixels: np.ndarray,
    pixel_spacing=(1.25, 1.5),
) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientID = "synthetic"
    ds.PatientSize = 1.8
    ds.PatientWeight = 80
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = f"cine {series_number}"
    ds.ImageOrientationPatient = [round(float(v), 8) for v in iop]
    ds.ImagePositionPatient = [round(float(v), 6) for v in ipp]
    ds.PixelSpacing = list(pixel_spacing)
    ds.SliceThickness = 6
    ds.TriggerTime = trigger_time
    ds.RescaleSlope = 2
    ds.RescaleIntercept = -10
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_oblique_study(folder: Path, num_slices=3, num_phases=4, spacing_mm=8.0) -> dict:
    """One oblique short-axis series per slice (phases written in shuffled order) plus a long-axis view."""
    rng = np.random.default_rng(1)
    iop = np.concatenate([oblique_affine()[:3, 0] / 1.5, oblique_affine()[:3, 1] / 1.25])
    normal = np.cross(iop[:3], iop[3:])
    origin = np.array([-40.0, 12.0, 30.0])
    pixels = rng.integers(0, 1000, size=(num_phases, num_slices, 6, 5))
    # slices are written in reverse anatomical order to check the sorting along the normal
    for k in reversed(range(num_slices)):
        uid = generate_uid()
        for t in rng.permutation(num_phases):
            write_dicom_image(
                folder / f"series{k}" / f"IM{t:04d}",
                uid,
                100 + k,
                iop,
                origin + k * spacing_mm * normal,
                trigger_time=35.0 * t + k,
                pixels=pixels[t, k],
            )
    lax_iop = np.array([0.0, 1.0, 0.0, 0.0, 0.0, -1.0])
    uid = generate_uid()
    for t in range(num_phases + 2):
        write_dicom_image(folder / "lax" / f"IM{t:04d}", uid, 50, lax_iop, origin, 35.0 * t, pixels[0, 0])
    (folder / "notes.txt").write_text("not a DICOM file")
    return {"iop": iop, "normal": normal, "origin": origin, "pixels": pixels}


def test_generated_oblique_dicom_stack_gives_the_right_grid_values_and_patient_size(tmp_path):
    study = write_oblique_study(tmp_path / "study")
    cine = read_cine(tmp_path / "study")
    assert cine.data.shape == (4, 3, 6, 5)
    np.testing.assert_array_equal(cine.data, study["pixels"] * 2.0 - 10.0)
    assert cine.trigger_times_ms == pytest.approx([1.0, 36.0, 71.0, 106.0])
    assert cine.spacing_mm == pytest.approx((1.5, 1.25, 8.0))
    assert cine.height_cm == pytest.approx(180.0) and cine.weight_kg == pytest.approx(80.0)
    assert cine.extra["series_numbers"] == [100, 101, 102]
    assert cine.extra["skipped_files"] == 1
    expected = np.eye(4)
    expected[:3, 0] = study["iop"][:3] * 1.5
    expected[:3, 1] = study["iop"][3:] * 1.25
    expected[:3, 2] = study["normal"] * 8.0
    expected[:3, 3] = study["origin"]
    np.testing.assert_allclose(cine.affine, np.diag([-1.0, -1.0, 1.0, 1.0]) @ expected, atol=1e-5)
    assert np.linalg.det(cine.affine[:3, :3]) > 0
    assert read_cine(tmp_path / "study", height_cm=170, weight_kg=60).height_cm == 170.0


def test_dicom_slices_with_different_phase_counts_are_refused(tmp_path):
    write_oblique_study(tmp_path / "study")
    next((tmp_path / "study" / "series1").iterdir()).unlink()
    with pytest.raises(CardiacInputError, match="different numbers of phases"):
        read_cine(tmp_path / "study")


# --------------------------------------------------------------------------------------------------
# ACDC


@pytest.fixture
def acdc() -> Path:
    if not (ACDC / "patient001" / "Info.cfg").is_file():
        pytest.skip(f"ACDC data not found at {ACDC} (a fresh clone has no ../shared/data)")
    return ACDC


@pytest.mark.data
def test_acdc_folder_reads_ed_es_frames_and_patient_size(acdc, monkeypatch):
    # the training parser returns Group too: inference must not even call it
    def forbidden(*args, **kwargs):
        raise AssertionError("read_cine must not parse Info.cfg with read_acdc_info (it returns Group)")

    monkeypatch.setattr(acdc_module, "read_acdc_info", forbidden)
    cine = read_cine(acdc / "patient001")
    assert cine.frame_numbers == [1, 12]
    assert (cine.end_diastole, cine.end_systole) == (1, 12)
    assert (cine.height_cm, cine.weight_kg) == (184.0, 95.0)
    assert cine.image_stems == ["patient001_frame01", "patient001_frame12"]
    array, affine, zooms, _ = read_nifti(acdc / "patient001" / "patient001_frame12.nii.gz")
    assert cine.data.shape == (2, *array.shape[::-1])
    np.testing.assert_array_equal(cine.data[1], np.transpose(array, (2, 1, 0)).astype(np.float32))
    np.testing.assert_allclose(cine.affine, affine)
    assert cine.spacing_mm == pytest.approx(zooms[:3])
    assert "Group" not in cine.extra["acdc_info"]
    assert "DCM" not in repr(cine.extra)


@pytest.mark.data
def test_acdc_frame_files_are_preferred_over_the_4d_file(acdc):
    cine = read_cine(acdc / "patient090")
    assert cine.frame_numbers == [4, 11]
    assert cine.image_stems == ["patient090_frame04", "patient090_frame11"]
    assert (cine.end_diastole, cine.end_systole) == (4, 11)


@pytest.mark.data
def test_acdc_folder_with_only_the_4d_file_reads_all_frames_numbered_from_one(acdc, tmp_path):
    folder = tmp_path / "patient090"
    folder.mkdir()
    shutil.copy(acdc / "patient090" / "Info.cfg", folder)
    (folder / "patient090_4d.nii.gz").symlink_to(acdc / "patient090" / "patient090_4d.nii.gz")
    cine = read_cine(folder)
    assert cine.frame_numbers == list(range(1, 13))
    assert (cine.end_diastole, cine.end_systole) == (4, 11)
    frame04, _, _ = read_nifti_volume(acdc / "patient090" / "patient090_frame04.nii.gz")
    np.testing.assert_array_equal(cine.data[cine.frame_index(4)], frame04)


def test_acdc_frames_on_different_grids_are_refused(tmp_path):
    (tmp_path / "Info.cfg").write_text("ED: 1\nES: 2\nGroup: NOR\nHeight: 170\nWeight: 70\n")
    save_nifti(np.zeros((8, 8, 3), np.int16), tmp_path / "patient999_frame01.nii.gz")
    save_nifti(np.zeros((8, 9, 3), np.int16), tmp_path / "patient999_frame02.nii.gz")
    save_nifti(np.zeros((8, 8, 3), np.uint8), tmp_path / "patient999_frame01_gt.nii.gz")
    with pytest.raises(CardiacInputError, match="patient999_frame02.nii.gz.*share one grid"):
        read_cine(tmp_path)


# --------------------------------------------------------------------------------------------------
# NIfTI and writers


def test_4d_nifti_round_trip_keeps_image_geometry_and_frame_times(tmp_path):
    rng = np.random.default_rng(0)
    original = Cine(
        data=rng.normal(size=(5, 4, 7, 6)).astype(np.float32),
        spacing_mm=(1.5, 1.25, 8.0),
        affine=oblique_affine(),
        frame_numbers=list(range(5)),
        trigger_times_ms=[0.0, 40.0, 80.0, 120.0, 160.0],
    )
    path = write_cine_nifti(original, tmp_path / "generated_cine.nii.gz")
    cine = read_cine(path)
    np.testing.assert_array_equal(cine.data, original.data)
    np.testing.assert_allclose(cine.affine, original.affine, atol=1e-5)
    assert cine.spacing_mm == pytest.approx(original.spacing_mm, rel=1e-6)
    assert cine.frame_numbers == [0, 1, 2, 3, 4]
    assert cine.trigger_times_ms == pytest.approx(original.trigger_times_ms)
    assert cine.image_stems == ["generated_cine"]
    assert [p.name for p in tmp_path.iterdir()] == ["generated_cine.nii.gz"]


def test_3d_nifti_is_a_cine_of_one_frame_and_a_volume(tmp_path):
    array = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)
    path = save_nifti(array, tmp_path / "one_frame.nii", oblique_affine())
    cine = read_cine(path)
    assert cine.frame_numbers == [0] and cine.num_frames == 1
    np.testing.assert_array_equal(cine.frame(0), np.transpose(array, (2, 1, 0)))
    volume, spacing, affine = read_volume(path)
    assert volume.shape == (3, 5, 4) and volume.dtype == np.float32
    assert spacing == pytest.approx((1.5, 1.25, 8.0), rel=1e-6)
    np.testing.assert_allclose(affine, oblique_affine(), atol=1e-5)


def test_label_map_round_trip_keeps_values_and_affine(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=(3, 7, 6), dtype=np.uint8)
    path = write_label_map(labels, oblique_affine(), tmp_path / "labels_seg.nii.gz")
    back, spacing, affine = read_nifti_volume(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)
    np.testing.assert_allclose(affine, oblique_affine(), atol=1e-5)
    assert spacing == pytest.approx((1.5, 1.25, 8.0), rel=1e-6)

    labels_4d = rng.integers(0, 4, size=(2, 3, 7, 6), dtype=np.uint8)
    path_4d = write_label_map(labels_4d, oblique_affine(), tmp_path / "cine_seg.nii.gz")
    array, _, _, _ = read_nifti(path_4d)
    np.testing.assert_array_equal(np.transpose(array, (3, 2, 1, 0)), labels_4d)


def test_label_map_keeps_acdc_style_spacing_next_to_a_unit_affine(tmp_path):
    labels = np.ones((3, 7, 6), dtype=np.uint8)
    unit_affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    path = write_label_map(labels, unit_affine, tmp_path / "p_seg.nii.gz", spacing_mm=(1.5625, 1.5625, 10.0))
    _, spacing, affine = read_nifti_volume(path)
    assert spacing == pytest.approx((1.5625, 1.5625, 10.0))
    np.testing.assert_allclose(affine, unit_affine)


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    def fail_half_way(self, filename, **kwargs):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(nib.Nifti1Image, "to_filename", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        write_label_map(np.zeros((2, 3, 4), np.uint8), np.eye(4), tmp_path / "out_seg.nii.gz")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# bad inputs: each names the file and the problem


def _nan_image(path: Path) -> Path:
    array = np.ones((4, 4, 3), np.float32)
    array[1, 2, 0] = np.nan
    return save_nifti(array, path)


def _zero_spacing_image(path: Path) -> Path:
    image = nib.Nifti1Image(np.ones((4, 4, 3), np.float32), None)
    image.header["pixdim"][1:4] = 0
    image.to_filename(str(path))
    return path


def _text_file(path: Path) -> Path:
    path.write_text("this is not an image")
    return path


def _folder_without_images(path: Path) -> Path:
    path.mkdir()
    (path / "readme.txt").write_text("no images here")
    (path / "empty.dcm").write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("name", "make", "reader", "message"),
    [
        ("missing.nii.gz", lambda p: p, read_cine, "no such file"),
        ("corrupt.nii.gz", _text_file, read_cine, "not a readable NIfTI"),
        ("nan.nii.gz", _nan_image, read_cine, "NaN"),
        ("nan.nii.gz", _nan_image, read_volume, "NaN"),
        ("empty.nii.gz", lambda p: save_nifti(np.zeros((0, 4, 3), np.float32), p), read_cine, "empty"),
        ("empty.nii.gz", lambda p: save_nifti(np.zeros((4, 0, 3), np.float32), p), read_volume, "empty"),
        ("nospacing.nii.gz", _zero_spacing_image, read_cine, "spacing is missing"),
        ("nospacing.nii.gz", _zero_spacing_image, read_volume, "spacing is missing"),
        (
            "cine4d.nii.gz",
            lambda p: save_nifti(np.ones((4, 4, 3, 2), np.float32), p),
            read_volume,
            "expected a 3D image, found 4D",
        ),
        (
            "five_d.nii.gz",
            lambda p: save_nifti(np.ones((4, 4, 3, 2, 2), np.float32), p),
            read_cine,
            "found 5D",
        ),
        ("two_d.nii.gz", lambda p: save_nifti(np.ones((4, 4), np.float32), p), read_cine, "found 2D"),
        ("notes.txt", _text_file, read_cine, "expected an ACDC patient folder"),
        ("no_images", _folder_without_images, read_cine, "found no readable DICOM image"),
    ],
)
def test_bad_input_raises_an_input_error_naming_the_file(tmp_path, name, make, reader, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(CardiacInputError, match=message) as caught:
        reader(path)
    assert name in str(caught.value)


@pytest.mark.data
def test_an_acdc_folder_read_with_all_frames_is_its_whole_cine_with_info_cfg(acdc_dir):
    folder = acdc_dir / "patient090"
    if not (folder / "patient090_4d.nii.gz").is_file():
        pytest.skip(f"{folder} with its 4D cine not available")
    pair = read_cine(folder)
    whole = read_cine(folder, all_frames=True)
    assert pair.num_frames == 2 and whole.num_frames > 10
    assert whole.frame_numbers == list(range(1, whole.num_frames + 1))
    assert (whole.end_diastole, whole.end_systole) == (pair.end_diastole, pair.end_systole)
    assert (whole.height_cm, whole.weight_kg) == (pair.height_cm, pair.weight_kg)
    # the 4D file's ED frame is the ED frame file, voxel for voxel
    ed = pair.frame_numbers.index(pair.end_diastole)
    assert np.array_equal(whole.data[whole.frame_numbers.index(pair.end_diastole)], pair.data[ed])
