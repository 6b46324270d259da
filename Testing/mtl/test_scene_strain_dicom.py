"""The Slicer panel's strain display and DICOM export, on slicer-core.

Strain: after an analysis the scene holds a table of the global and AHA-segment strain, the global strain
curves as a plot and the bull's-eye picture as an RGB image volume, all equal to the result's
``StrainResult``, refreshed when a correction changes it and removed with the study. DICOM: the panel's
Export DICOM writes the library's DICOM SEG and SR (the writer of ``cardiac-mtl analyze --dicom-out``) into a
folder named after the case, replaces only its own earlier export and refuses a folder with a user's file
and a cine that was not read from DICOM. Results come from the generator's exact labels (no network).
"""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

slicer = pytest.importorskip(
    "slicer", reason="slicer-core is not installed (pip install 'trame-slicer[standalone]')"
)
hd = pytest.importorskip("highdicom")

from CardiacMTLLib.errors import CardiacError, CardiacInputError, CardiacOutputError  # noqa: E402
from CardiacMTLLib.io.cine import read_cine  # noqa: E402
from CardiacMTLLib.pipeline import measure  # noqa: E402
from CardiacMTLLib.report.bullseye import write_bullseye  # noqa: E402
from CardiacMTLLib.scene.cardiac import CardiacScene  # noqa: E402
from CardiacMTLLib.scene.nodes import image_data_from_array, table_rows, vtk_matrix  # noqa: E402
from CardiacMTLLib.scene.segmentation import LABEL_SEGMENT_IDS, labels_from_segmentation  # noqa: E402
from CardiacMTLLib.scene.strain import BULLSEYE_NAME, UNMEASURED, png_to_rgb  # noqa: E402
from CardiacMTLLib.scene.study import Study  # noqa: E402
from CardiacMTLLib.synthetic.dicom import write_cine_dicom  # noqa: E402
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine  # noqa: E402
from CardiacMTLLib.types import Label  # noqa: E402


@pytest.fixture(scope="module")
def measured():
    """A whole-cycle result (strain curves over every frame) made from the generator's exact labels."""
    case = generate_synthetic_cine(seed=4, num_frames=6, shape=(96, 96, 6), subslices=1)
    result = measure(case.cine, case.labels, {"device": "cpu (test)"})
    assert result.strain is not None and result.strain.from_curves
    return result


def _nan(value):
    return np.nan if value is None else value


def test_strain_table_has_the_global_row_and_every_segment_with_the_results_values(measured):
    logic = CardiacScene(slicer.vtkMRMLScene(), strain_nodes=True)
    logic.show_result(measured)
    strain, rows = measured.strain, table_rows(logic.nodes.strain)
    assert [r["Region"] for r in rows] == ["global"] + [str(n) for n in range(1, 17)]
    np.testing.assert_allclose(
        [r["Peak circumferential (%)"] for r in rows],
        [_nan(strain.global_circumferential_pct)]
        + [_nan(s.peak_circumferential_pct) for s in strain.segments],
    )
    np.testing.assert_allclose(
        [r["Peak radial (%)"] for r in rows[1:]], [_nan(s.peak_radial_pct) for s in strain.segments]
    )
    np.testing.assert_allclose(
        [r["Thickening (%)"] for r in rows[1:]], [_nan(s.thickening_pct) for s in strain.segments]
    )
    # the apical slice's cavity closes at ES in this heart: its segments are not followed there
    assert strain.unmeasured_segments == [13, 14, 15, 16]
    assert [r["Wall motion"] for r in rows[1:]] == [
        UNMEASURED if s.segment in strain.unmeasured_segments else s.wall_motion or ""
        for s in strain.segments
    ]
    assert strain.global_circumferential_pct < -5  # the generated heart shortens: the check is not vacuous
    assert logic.nodes.strain.GetAttribute("CardiacMTL.wallMotionRule") == strain.rule


def test_a_segment_without_wall_at_end_systole_says_so_in_the_table(measured):
    """A basal slice in the atrium at systole leaves its segments unmeasured: the table says why rather
    than leaving the wall motion blank."""
    unmeasured = [1, 2, 3, 4, 5, 6]
    segments = [
        replace(s, peak_radial_pct=None, peak_circumferential_pct=None, wall_motion=None)
        if s.segment in unmeasured
        else s
        for s in measured.strain.segments
    ]
    strain = replace(measured.strain, segments=segments, unmeasured_segments=unmeasured)
    logic = CardiacScene(slicer.vtkMRMLScene(), strain_nodes=True)
    logic.show_result(replace(measured, strain=strain))
    rows = table_rows(logic.nodes.strain)[1:]
    assert [r["Wall motion"] for r in rows[:6]] == [UNMEASURED] * 6
    assert all(np.isnan(r["Peak radial (%)"]) for r in rows[:6])
    assert [r["Wall motion"] for r in rows[6:]] == [s.wall_motion or "" for s in strain.segments[6:]]


def test_global_strain_curves_are_plotted_over_the_tracked_frames(measured):
    logic = CardiacScene(slicer.vtkMRMLScene(), strain_nodes=True)
    logic.show_result(measured)
    rows, strain = table_rows(logic.nodes.strain_curves), measured.strain
    assert [int(r["Frame"]) for r in rows] == strain.frame_numbers
    np.testing.assert_allclose(
        [r["GCS (%)"] for r in rows], [_nan(v) for v in strain.global_circumferential_curve_pct]
    )
    np.testing.assert_allclose(
        [r["GRS (%)"] for r in rows], [_nan(v) for v in strain.global_radial_curve_pct]
    )
    chart = logic.nodes.strain_chart
    series = [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]
    assert [(s.GetXColumnName(), s.GetYColumnName()) for s in series] == [
        ("Time (ms)", "GRS (%)"),
        ("Time (ms)", "GCS (%)"),
    ]
    assert all(s.GetTableNode() is logic.nodes.strain_curves for s in series)


def test_bullseye_is_the_reports_picture_as_an_upright_rgb_volume(measured):
    import matplotlib.image
    import vtk
    from vtk.util import numpy_support

    logic = CardiacScene(slicer.vtkMRMLScene(), strain_nodes=True)
    logic.show_result(measured)
    node = logic.nodes.bullseye
    assert node.IsA("vtkMRMLVectorVolumeNode") and node.GetName() == BULLSEYE_NAME
    png = write_bullseye(measured.strain)
    expected = np.round(matplotlib.image.imread(io.BytesIO(png))[..., :3] * 255).astype(np.uint8)
    image = node.GetImageData()
    cols, rows, slices = image.GetDimensions()
    voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(slices, rows, cols, -1)
    assert voxels.shape == (1, *expected.shape)  # row 0 of the volume is the picture's top row
    np.testing.assert_array_equal(voxels[0], expected)
    np.testing.assert_array_equal(png_to_rgb(png), expected)
    assert len(np.unique(expected.reshape(-1, 3), axis=0)) > 50  # a drawing, not a blank picture
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    origin, next_column, next_row = (
        matrix.MultiplyPoint(p) for p in ([0, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1])
    )
    assert next_column[0] < origin[0]  # columns run to the patient's left: left to right in the axial view
    assert next_row[1] < origin[1]  # rows run posterior: top to bottom in the axial view


def test_without_strain_nodes_the_scene_has_none(measured):
    scene = slicer.vtkMRMLScene()
    logic = CardiacScene(scene)
    logic.show_result(measured)
    assert logic.nodes.strain is None and logic.nodes.bullseye is None
    assert scene.GetNumberOfNodesByClass("vtkMRMLVectorVolumeNode") == 0


def test_clearing_removes_the_strain_nodes(measured):
    scene = slicer.vtkMRMLScene()
    logic = CardiacScene(scene, strain_nodes=True)
    logic.show_result(measured)
    logic.show_result(measured)  # a second result replaces the first one's nodes
    assert scene.GetNumberOfNodesByClass("vtkMRMLVectorVolumeNode") == 1
    assert scene.GetNumberOfNodesByClass("vtkMRMLPlotChartNode") == 2  # volume curves and strain curves
    logic.clear()
    for cls in (
        "vtkMRMLVectorVolumeNode",
        "vtkMRMLTableNode",
        "vtkMRMLPlotChartNode",
        "vtkMRMLPlotSeriesNode",
    ):
        assert scene.GetNumberOfNodesByClass(cls) == 0, cls


def test_a_corrected_segmentation_refreshes_the_strain_nodes(measured):
    logic = CardiacScene(slicer.vtkMRMLScene(), strain_nodes=True)
    logic.show_result(measured)
    table, image = logic.nodes.strain, logic.nodes.bullseye
    before = [r["Peak circumferential (%)"] for r in table_rows(table)]
    logic.set_frame(measured.es_index)  # Segment Editor erases half of the ES myocardium's pixels
    shape = logic.cine.data.shape[1:]
    myocardium = (
        labels_from_segmentation(logic.nodes.segmentation, shape, logic.matrix) == Label.LV_MYOCARDIUM
    )
    pixels = np.argwhere(myocardium)
    myocardium[tuple(pixels[pixels[:, 2] > np.median(pixels[:, 2])].T)] = False
    edited = slicer.vtkOrientedImageData()
    edited.ShallowCopy(image_data_from_array(myocardium.astype(np.uint8)))
    edited.SetImageToWorldMatrix(vtk_matrix(logic.matrix))
    assert slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        edited,
        logic.nodes.segmentation,
        LABEL_SEGMENT_IDS[int(Label.LV_MYOCARDIUM)],
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE,
    )
    updated = logic.update_from_segmentation()
    assert updated.strain is not measured.strain
    after = [r["Peak circumferential (%)"] for r in table_rows(logic.nodes.strain)]
    assert logic.nodes.strain is table and logic.nodes.bullseye is image  # refilled, not duplicated
    np.testing.assert_allclose(after[1:], [_nan(s.peak_circumferential_pct) for s in updated.strain.segments])
    assert not np.allclose(np.nan_to_num(after), np.nan_to_num(before))


# ------------------------------------------------------------------------------------------- DICOM


@pytest.fixture(scope="module")
def dicom_result(tmp_path_factory):
    """A generated cine written as a DICOM study, read back and measured on its exact labels."""
    case = generate_synthetic_cine(seed=1, num_frames=4, shape=(64, 64, 4))
    folder = tmp_path_factory.mktemp("dicom") / "study"
    write_cine_dicom(case.cine, folder)
    return measure(read_cine(folder), case.labels.astype(np.uint8), provenance={})


def _study_with(result) -> Study:
    study = Study(slicer.vtkMRMLScene())
    study.show_result(result)
    return study


def test_export_dicom_writes_the_librarys_seg_and_sr_in_a_folder_named_after_the_case(dicom_result, tmp_path):
    (tmp_path / "notes.txt").write_text("the user's own file")
    out = _study_with(dicom_result).export_dicom(tmp_path)
    assert out == (tmp_path / "study_cardiacmtl_dicom").resolve()
    assert sorted(p.name for p in out.glob("*.dcm")) == ["seg_ED.dcm", "seg_ES.dcm", "sr.dcm"]
    seg = hd.seg.segread(out / "seg_ED.dcm")
    uids = [
        str(read_header(f).SOPInstanceUID)
        for f in dicom_result.cine.extra["dicom_files"][dicom_result.ed_index]
    ]
    labels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(labels, dicom_result.labels[dicom_result.ed_index])
    sr = hd.sr.srread(out / "sr.dcm")
    values = {
        m.name.meaning: m.value for m in sr.content.get_image_measurement_groups()[0].get_measurements()
    }
    assert values["LVEDV"] == pytest.approx(dicom_result.indices["LVEDV (mL)"], abs=1e-9)
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"


def read_header(path):
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)


def test_a_second_dicom_export_replaces_only_its_own_files(dicom_result, tmp_path):
    study = _study_with(dicom_result)
    first = read_header(study.export_dicom(tmp_path) / "sr.dcm").SOPInstanceUID
    out = study.export_dicom(tmp_path)
    assert read_header(out / "sr.dcm").SOPInstanceUID != first
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "seg_ED.dcm",
        "seg_ES.dcm",
        "sr.dcm",
    ]


def test_dicom_export_never_writes_over_a_users_files(dicom_result, tmp_path):
    target = tmp_path / "study_cardiacmtl_dicom"
    target.mkdir()
    (target / "sr.dcm").write_bytes(b"the user's own report")
    with pytest.raises(CardiacOutputError, match="CardiacMTL did not write"):
        _study_with(dicom_result).export_dicom(tmp_path)
    assert (target / "sr.dcm").read_bytes() == b"the user's own report"
    assert sorted(p.name for p in target.iterdir()) == ["sr.dcm"]


def test_dicom_export_of_a_cine_not_read_from_dicom_is_refused_before_writing(measured, tmp_path):
    with pytest.raises(CardiacInputError, match="DICOM export needs a DICOM input"):
        _study_with(measured).export_dicom(tmp_path)
    assert not list(tmp_path.iterdir())
    with pytest.raises(CardiacError, match="nothing to export"):
        Study(slicer.vtkMRMLScene()).export_dicom(tmp_path)


def test_a_file_picked_in_a_one_slice_series_loads_the_whole_study(tmp_path):
    case = generate_synthetic_cine(seed=2, num_frames=3, shape=(48, 48, 4))
    files = write_cine_dicom(case.cine, tmp_path / "study")  # one series per slice position
    assert len({f.parent for f in files}) == 4
    study = Study(slicer.vtkMRMLScene())
    nodes = study.load_file(files[0])
    assert study.cine.data.shape == case.cine.data.shape
    assert nodes.sequence.GetNumberOfDataNodes() == 3 and nodes.sequence.GetName() == "study"
    np.testing.assert_allclose(study.cine.affine, read_cine(tmp_path / "study").affine)
