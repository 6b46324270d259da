"""DICOM SEG and SR exports read back with highdicom: segments, frames and geometry match the label maps, every
SR measurement equals the indices, and inputs without source DICOM are refused."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pydicom
import pytest

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.io.dicom_export import (
    CODING_SCHEME,
    UCUM_UNITS,
    measurement_items,
    study_file_stem,
    write_dicom_exports,
)
from CardiacMTLLib.outputs import write_outputs
from CardiacMTLLib.pipeline import analyze, measure
from CardiacMTLLib.synthetic.dicom import write_cine_dicom
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.types import STRUCTURES

hd = pytest.importorskip("highdicom")


def _lps_position(cine, k: int) -> np.ndarray:
    """ImagePositionPatient (DICOM LPS) of slice ``k`` of ``cine``, from its affine."""
    return (np.diag([-1.0, -1.0, 1.0, 1.0]) @ cine.affine @ [0, 0, k, 1])[:3]


def check_seg_matches(seg_path, result, t: int) -> None:
    """The SEG of frame position ``t``: three segments named by Label, one frame per slice and segment,
    each at its source image's position, and pixels equal to the label map."""
    cine = result.cine
    seg = hd.seg.segread(seg_path)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [label.display_name for label in STRUCTURES]
    assert [int(s.SegmentNumber) for s in seg.SegmentSequence] == [int(label) for label in STRUCTURES]
    assert seg.NumberOfFrames == cine.num_slices * len(STRUCTURES)
    sources = {}
    for files in cine.extra["dicom_files"][t]:
        header = pydicom.dcmread(files, stop_before_pixels=True)
        sources[header.SOPInstanceUID] = header
    assert len(seg.ReferencedSeriesSequence) == len({h.SeriesInstanceUID for h in sources.values()})
    for frame in seg.PerFrameFunctionalGroupsSequence:
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        source = sources[uid]
        position = np.array(frame.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        np.testing.assert_allclose(position, np.array(source.ImagePositionPatient, dtype=float), atol=1e-3)
        k = cine.extra["dicom_files"][t].index(str(source.filename))
        np.testing.assert_allclose(position, _lps_position(cine, k), atol=1e-2)
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    np.testing.assert_allclose(
        [float(v) for v in orientation], cine.extra["image_orientation_patient"], atol=1e-6
    )
    uids = [str(h.SOPInstanceUID) for h in (sources[u] for u in sources)]
    order = [cine.extra["dicom_files"][t].index(str(sources[u].filename)) for u in uids]
    labels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(labels, result.labels[t][order])


def check_sr_matches(sr_path, indices_json: dict) -> None:
    """Every SR measurement equals ``indices.json`` (with its unit), every index with a value is there, and
    the diagnosis is the finding."""
    sr = hd.sr.srread(sr_path)
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    group = sr.content.get_image_measurement_groups()[0]
    by_name = {name: (key, unit) for key, name, _, unit in measurement_items(indices_json["indices"])}
    found, finding = {}, None
    for measurement in group.get_measurements():
        key, unit = by_name[measurement.name.meaning]
        assert measurement.name.scheme_designator == CODING_SCHEME
        assert measurement.unit.value == UCUM_UNITS[unit][0]
        found[key] = measurement.value
    for item in group[0].ContentSequence:
        if item.ValueType == "CODE" and item.ConceptNameCodeSequence[0].CodeMeaning == "Finding":
            finding = item.ConceptCodeSequence[0].CodeValue
    expected = {
        k: v
        for k, v in indices_json["indices"].items()
        if v is not None and k not in ("ED frame", "ES frame")
    }
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, abs=1e-9), key
    assert finding == indices_json["diagnosis"]["class"]


@pytest.fixture(scope="module")
def synthetic_dicom_result(tmp_path_factory):
    """A generated cine written as a DICOM study (one series per slice) and measured on its exact labels."""
    case = generate_synthetic_cine(seed=1, num_frames=6, shape=(80, 80, 5))
    folder = tmp_path_factory.mktemp("dicom")
    write_cine_dicom(case.cine, folder)
    cine = read_cine(folder)
    return measure(cine, case.labels.astype(np.uint8), provenance={})


def test_seg_and_sr_of_a_generated_dicom_study_read_back_equal_the_result(synthetic_dicom_result, tmp_path):
    result = synthetic_dicom_result
    write_outputs(result, tmp_path / "out")
    out = write_dicom_exports(result, tmp_path / "dicom")
    assert sorted(p.name for p in out.glob("*.dcm")) == ["seg_ED.dcm", "seg_ES.dcm", "sr.dcm"]
    check_seg_matches(out / "seg_ED.dcm", result, result.ed_index)
    check_seg_matches(out / "seg_ES.dcm", result, result.es_index)
    check_sr_matches(out / "sr.dcm", json.loads((tmp_path / "out" / "indices.json").read_text()))


def test_all_frames_give_one_seg_each_in_one_series(synthetic_dicom_result, tmp_path):
    result = synthetic_dicom_result
    out = write_dicom_exports(result, tmp_path / "dicom", frames=range(result.cine.num_frames))
    segs = sorted(out.glob("seg_*.dcm"))
    assert len(segs) == result.cine.num_frames
    assert len({hd.seg.segread(p).SeriesInstanceUID for p in segs}) == 1


def test_export_of_a_nifti_input_is_refused_naming_the_need_for_dicom(tmp_path):
    case = generate_synthetic_cine(seed=0, num_frames=3, shape=(64, 64, 4))
    result = measure(case.cine, case.labels.astype(np.uint8), provenance={})
    with pytest.raises(CardiacInputError, match="DICOM export needs a DICOM input"):
        write_dicom_exports(result, tmp_path / "dicom")
    assert not (tmp_path / "dicom").exists()


def test_download_names_carry_the_patient_id(synthetic_dicom_result):
    assert study_file_stem(synthetic_dicom_result.cine).startswith("synthetic")


@pytest.mark.data
@pytest.mark.slow
def test_seg_and_sr_of_the_oblique_bivme_study_match_the_label_maps(bivme_dicom_dir, tmp_path):
    cine = read_cine(bivme_dicom_dir)
    result = analyze(cine)
    write_outputs(result, tmp_path / "out")
    out = write_dicom_exports(result, tmp_path / "dicom")
    check_seg_matches(out / "seg_ED.dcm", result, result.ed_index)
    check_seg_matches(out / "seg_ES.dcm", result, result.es_index)
    check_sr_matches(out / "sr.dcm", json.loads((tmp_path / "out" / "indices.json").read_text()))
    slicer = pytest.importorskip("slicer")
    from CardiacMTLLib.scene.nodes import ijk_to_ras
    from CardiacMTLLib.scene.segmentation import labels_from_segmentation, load_dicom_seg

    # loaded into slicer-core, the oblique SEG lies on the short-axis images: read back on their grid
    for name, t in (("seg_ED.dcm", result.ed_index), ("seg_ES.dcm", result.es_index)):
        node = load_dicom_seg(slicer.vtkMRMLScene(), out / name)
        back = labels_from_segmentation(node, cine.data.shape[1:], ijk_to_ras(cine.affine, cine.spacing_mm))
        np.testing.assert_array_equal(back, result.labels[t])


def test_a_zipped_dicom_study_reads_and_exports_from_the_archive(tmp_path):
    case = generate_synthetic_cine(seed=2, num_frames=4, shape=(64, 64, 4))
    files = write_cine_dicom(case.cine, tmp_path / "study")
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in files:
            z.write(f, f.relative_to(tmp_path).as_posix())
    cine = read_cine(archive)
    assert cine.source == str(archive) and cine.extra["dicom_archive"] == str(archive.resolve())
    np.testing.assert_allclose(cine.data, read_cine(tmp_path / "study").data)
    result = measure(cine, case.labels.astype(np.uint8), provenance={})
    out = write_dicom_exports(result, tmp_path / "dicom")
    seg = hd.seg.segread(out / "seg_ED.dcm")
    assert seg.NumberOfFrames == cine.num_slices * len(STRUCTURES)


def test_a_zip_without_images_is_refused_naming_the_zip(tmp_path):
    archive = tmp_path / "notes.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "no images here")
    with pytest.raises(CardiacInputError, match=r"notes\.zip \(zip\): .*no readable DICOM image"):
        read_cine(archive)


def test_the_seg_loads_in_slicer_core_as_the_label_maps_in_patient_space(synthetic_dicom_result, tmp_path):
    """``seg_ED.dcm`` loaded into an MRML scene: three segments, and on the cine's own voxel grid (read back
    through the node's geometry, so a wrong orientation or slice order would show) the ED label map."""
    slicer = pytest.importorskip("slicer")
    from CardiacMTLLib.scene.nodes import ijk_to_ras
    from CardiacMTLLib.scene.segmentation import labels_from_segmentation, load_dicom_seg

    result = synthetic_dicom_result
    out = write_dicom_exports(result, tmp_path / "dicom")
    scene = slicer.vtkMRMLScene()
    node = load_dicom_seg(scene, out / "seg_ED.dcm")
    assert scene.GetNodeByID(node.GetID()) is node
    segmentation = node.GetSegmentation()
    names = [segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())]
    assert names == [label.display_name for label in STRUCTURES]
    cine = result.cine
    back = labels_from_segmentation(node, cine.data.shape[1:], ijk_to_ras(cine.affine, cine.spacing_mm))
    np.testing.assert_array_equal(back, result.labels[result.ed_index])
    with pytest.raises(CardiacInputError, match="not a readable DICOM Segmentation"):
        load_dicom_seg(scene, out / "sr.dcm")
