"""The patient's sex, where the criteria have limits for men and women: read from DICOM PatientSex or given
by the user, checked, and used by the criteria trace of an analysis."""

import dataclasses

import pytest

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import checked_sex, read_cine
from CardiacMTLLib.pipeline import measure
from CardiacMTLLib.synthetic.dicom import write_cine_dicom
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case


@pytest.mark.parametrize(("typed", "sex"), [("M", "M"), ("male", "M"), (" f ", "F"), ("Female", "F")])
def test_what_a_user_types_is_read_as_m_or_f(typed, sex):
    assert checked_sex(typed) == sex


def test_anything_else_is_a_one_line_error(tmp_path):
    case = generate_synthetic_cine(seed=1, num_frames=2)
    path = write_synthetic_case(case, tmp_path) / "synthetic_cine.nii.gz"
    with pytest.raises(CardiacInputError, match="sex must be M or F, got 'x'"):
        read_cine(path, sex="x")
    assert read_cine(path).sex is None
    assert read_cine(path, sex="female").sex == "F"


def test_dicom_patient_sex_reaches_the_cine(tmp_path):
    case = generate_synthetic_cine(seed=2, num_frames=2)
    write_cine_dicom(dataclasses.replace(case.cine, sex="F"), tmp_path / "f")
    write_cine_dicom(case.cine, tmp_path / "none")
    assert read_cine(tmp_path / "f").sex == "F"
    assert read_cine(tmp_path / "none").sex is None
    assert read_cine(tmp_path / "f", sex="M").sex == "M"  # the user's word wins


def test_the_criteria_with_limits_for_men_and_women_use_it():
    case = generate_synthetic_cine(seed=0)

    def lvedvi_line(sex):
        cine = dataclasses.replace(case.cine, sex=sex, height_cm=175.0, weight_kg=70.0)
        result = measure(cine, case.labels, provenance={})
        line = next(
            c for c in result.diagnosis["criteria"] if c["index"] == "LVEDVi (mL/m2)" and c["class"] == "NOR"
        )
        return line["explanation"], result.provenance

    women, provenance = lvedvi_line("F")
    assert women.endswith("80 (women)") and provenance["sex"] == "F"
    men, provenance = lvedvi_line("M")
    assert men.endswith("90 (men)") and provenance["sex"] == "M"
    unknown, provenance = lvedvi_line(None)
    assert "(men)" in unknown and "(women)" in unknown and "sex" not in provenance


def test_a_cohort_manifest_gives_the_sex_of_each_study(tmp_path):
    from CardiacMTLApps.cohort import read_manifest

    manifest = tmp_path / "cohort.csv"
    manifest.write_text("study_id,path,height_cm,weight_kg,sex\na,a.nii.gz,170,70,f\nb,b.nii.gz,,,\n")
    assert [s.sex for s in read_manifest(manifest)] == ["F", None]
    manifest.write_text("study_id,path,sex\na,a.nii.gz,unknown\n")
    with pytest.raises(CardiacInputError, match="line 2: sex must be M or F"):
        read_manifest(manifest)
