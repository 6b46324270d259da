"""The wording of results shared by the Slicer panel, the browser app and indices.csv (report/text.py)."""

from __future__ import annotations

import csv
import io

import numpy as np

from CardiacMTLLib.models.registry import CatalogueCheck
from CardiacMTLLib.outputs import indices_csv_text, write_outputs
from CardiacMTLLib.report import text
from CardiacMTLLib.types import AnalysisResult, Cine

DIAGNOSIS = {
    "class": "DCM",
    "class_name": "dilated cardiomyopathy",
    "probabilities": {"NOR": 0.05, "MINF": 0.1, "DCM": 0.804, "HCM": 0.016, "ARV": 0.03},
    "criteria_summary": {"NOR": "0/2 met", "DCM": "2/2 met"},
}


def test_diagnosis_is_worded_with_its_probabilities_and_criteria():
    assert text.diagnosis_text(DIAGNOSIS) == "DCM: dilated cardiomyopathy"
    assert text.probability_texts(DIAGNOSIS) == ["NOR 5 %", "MINF 10 %", "DCM 80 %", "HCM 2 %", "ARV 3 %"]
    assert text.criteria_text(DIAGNOSIS) == "NOR: 0/2 met; DCM: 2/2 met"
    assert text.diagnosis_lines(DIAGNOSIS) == [
        "DCM: dilated cardiomyopathy",
        "NOR 5 %, MINF 10 %, DCM 80 %, HCM 2 %, ARV 3 %",
        "criteria met: NOR: 0/2 met; DCM: 2/2 met",
    ]


def test_a_missing_diagnosis_says_why():
    assert text.diagnosis_text({"class": None, "error": "no LV found"}) == "No diagnosis: no LV found"
    assert text.diagnosis_text(None) == "No diagnosis: not computed"
    assert text.diagnosis_lines(None) == ["No diagnosis: not computed"]
    assert text.probability_texts({"class": None}) == [] and text.criteria_text(None) == ""


def test_qc_findings_name_frame_and_slice_only_when_there_is_one():
    findings = [
        {"frame": 1, "slice": 3, "problem": "LV cavity not closed"},
        {"frame": 12, "slice": None, "problem": "ED and ES volumes equal"},
    ]
    assert text.qc_lines(findings) == [
        "frame 1 slice 3: LV cavity not closed",
        "frame 12: ED and ES volumes equal",
    ]
    assert text.qc_summary(findings)[0] == "QC warnings:" and len(text.qc_summary(findings)) == 3
    assert text.qc_summary([]) == ["QC: no warnings"]


def test_landmarks_values_and_the_model_check_are_worded():
    landmarks = [
        {"label": "RV anterior insertion", "frame": 1, "slice": 4, "ijk": [61.24, 80.0, 4.0], "edited": True},
        {"label": "RV inferior insertion", "frame": 1, "slice": 4, "ijk": [50.0, 70.0, 4.0]},
    ]
    assert text.landmarks_text(landmarks) == "2 landmarks (1 edited)"
    assert (
        text.landmark_line(landmarks[0]) == "RV anterior insertion frame 1 slice 4 (61.2, 80.0, 4.0) edited"
    )
    assert text.format_value(None) == "n/a" and text.format_value(61.23456) == "61.23"
    checks = [CatalogueCheck("acdc-unet2d", "0.1.0"), CatalogueCheck("x", "2", ("weights.pt missing",))]
    assert text.catalogue_text(checks) == "acdc-unet2d 0.1.0: ok\nx 2: weights.pt missing"


def test_progress_and_outcome_lines():
    assert text.progress_text(None, None) == "Loading the network ..."
    assert text.progress_text(0, 12) == "Loading the network ..."
    assert text.progress_text(3, 12) == "Segmenting frame 3 of 12 ..."
    assert text.progress_text(12, 12) == "Measuring: indices, landmarks, strain, diagnosis ..."
    assert text.outcome_text("cancelled") == "Cancelled; nothing was changed."
    assert text.outcome_text("failed", ValueError("bad cine")) == "Failed: bad cine"
    assert text.outcome_text("succeeded") == "Done."


def small_result() -> AnalysisResult:
    labels = np.zeros((2, 2, 8, 8), dtype=np.uint8)
    labels[:, :, 2:6, 2:6] = 3
    cine = Cine(
        data=np.random.default_rng(0).random((2, 2, 8, 8)),
        spacing_mm=(1.5, 1.5, 8.0),
        affine=np.diag([1.5, 1.5, 8.0, 1.0]),
        frame_numbers=[1, 2],
        source="case.nii.gz",
    )
    return AnalysisResult(
        cine=cine,
        labels=labels,
        indices={"ED frame": 1, "LVEDV (mL)": 3.456, "LVEF (%)": None},
        volume_curve_ml={"LV": [3.456, 3.456]},
        ed_index=0,
        es_index=1,
        provenance={"device": "cpu (2 threads)"},
        diagnosis=DIAGNOSIS,
        qc=[{"frame": 2, "slice": None, "problem": "ED and ES volumes equal"}],
    )


def test_panel_texts_of_a_result():
    shown = text.panel_texts(small_result())
    assert shown.device == "cpu (2 threads)"
    assert shown.diagnosis.splitlines()[0] == "DCM: dilated cardiomyopathy"
    assert shown.qc == "QC warnings:\nframe 2: ED and ES volumes equal"
    assert shown.landmarks == "0 landmarks (0 edited)"


def test_the_downloaded_csv_is_the_result_folders_csv(tmp_path):
    result = small_result()
    folder = write_outputs(result, tmp_path / "analysis")
    written = (folder / "indices.csv").read_bytes()
    assert indices_csv_text(result).encode() == written
    (row,) = csv.DictReader(io.StringIO(indices_csv_text(result)))
    assert row["Diagnosis"] == "DCM" and row["LVEF (%)"] == "" and row["P(DCM)"] == "0.804"
    assert row["QC findings"] == "frame 2: ED and ES volumes equal"
