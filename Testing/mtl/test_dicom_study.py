"""A DICOM folder is one study of one patient: images of another patient or another visit are refused,
not assembled into the same heart."""

from __future__ import annotations

import pytest

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.synthetic.dicom import write_cine_dicom
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    case = generate_synthetic_cine(seed=2, num_frames=3, shape=(64, 64, 4))
    return write_cine_dicom(case.cine, tmp_path_factory.mktemp("dicom") / "study")


def _copy_with(files, tmp_path, keyword: str, value: str):
    """The study with ``keyword`` set to ``value`` in the files of its second slice (series)."""
    import pydicom

    folder = tmp_path / "study"
    for path in files:
        target = folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        ds = pydicom.dcmread(path)
        if path.parent == files[-1].parent:
            setattr(ds, keyword, value)
        ds.save_as(target)
    return folder


def test_the_study_as_written_reads(files):
    assert read_cine(files[0].parent.parent).num_slices == 4


@pytest.mark.parametrize(
    "keyword, value, what",
    [("PatientID", "someone else", "2 patients"), ("StudyInstanceUID", "1.2.3.4.5", "2 studies")],
)
def test_a_folder_mixing_patients_or_studies_is_refused_naming_them(files, tmp_path, keyword, value, what):
    folder = _copy_with(files, tmp_path, keyword, value)
    with pytest.raises(CardiacInputError, match=f"{what} \\({keyword} .*'{value}'") as refused:
        read_cine(folder)
    assert "\n" not in str(refused.value) and str(folder) in str(refused.value)
