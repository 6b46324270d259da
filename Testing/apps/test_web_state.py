"""The browser app's panel state and resources without a browser: what the page shows for a result, the
cases it offers, the network loading in the background."""

from __future__ import annotations

import io
import logging
import types

import numpy as np
import pytest

from CardiacMTLApps.web import resources, state
from CardiacMTLLib.errors import CardiacError, CardiacModelError
from CardiacMTLLib.tasks import TaskOutcome
from CardiacMTLLib.types import AnalysisResult, Cine


def small_result(diagnosis=None, landmarks=None) -> AnalysisResult:
    cine = Cine(
        data=np.zeros((3, 2, 8, 8)),
        spacing_mm=(1.25, 1.25, 10.0),
        affine=np.eye(4),
        frame_numbers=[1, 2, 3],
    )
    return AnalysisResult(
        cine=cine,
        labels=np.zeros((3, 2, 8, 8), dtype=np.uint8),
        indices={"LVEDV (mL)": 151.23456, "LVEF (%)": None, "ED frame": 1},
        volume_curve_ml={"LV": [1.0, 0.5, 0.8]},
        ed_index=0,
        es_index=1,
        provenance={"device": "cpu (2 threads)"},
        diagnosis=diagnosis,
        qc=[{"frame": 2, "slice": 1, "problem": "LV cavity not closed"}],
        landmarks=landmarks or [],
    )


def test_a_result_fills_the_panel_with_the_shared_wording():
    diagnosis = {
        "class": "HCM",
        "class_name": "hypertrophic cardiomyopathy",
        "probabilities": {"NOR": 0.1, "MINF": 0.0, "DCM": 0.0, "HCM": 0.85, "ARV": 0.05},
        "criteria": [
            {"class": "HCM", "index": "LVM (g)", "rule": "> 100", "value": 123.456, "status": "met"}
        ],
    }
    landmarks = [
        {"label": "RV anterior insertion", "frame": 1, "slice": 1, "ijk": [3.0, 4.0, 1.0], "edited": True}
    ]
    shown = state.result_state(small_result(diagnosis, landmarks), "loading")
    assert shown["diagnosis_text"] == "HCM: hypertrophic cardiomyopathy"
    assert shown["probabilities"] == ["NOR 10 %", "MINF 0 %", "DCM 0 %", "HCM 85 %", "ARV 5 %"]
    assert shown["criteria"] == [
        {"cls": "HCM", "index": "LVM (g)", "rule": "> 100", "value": "123.5", "status": "met"}
    ]
    assert shown["indices_rows"][0] == {"metric": "LVEDV", "value": "151.2", "unit": "mL"}
    assert shown["indices_rows"][1]["value"] == "n/a"
    assert shown["qc_rows"] == ["frame 2 slice 1: LV cavity not closed"]
    assert shown["landmark_rows"] == [
        {"index": 0, "text": "RV anterior insertion frame 1 slice 1 (3.0, 4.0, 1.0) edited", "edited": True}
    ]
    assert shown["device"] == "cpu (2 threads)"


def test_no_diagnosis_leaves_probabilities_and_criteria_empty():
    shown = state.result_state(small_result({"class": None, "error": "implausible heart"}), "cpu")
    assert shown["diagnosis_text"] == "No diagnosis: implausible heart"
    assert shown["probabilities"] == [] and shown["criteria"] == []


def test_a_click_that_crosses_the_analysis_end_or_start_does_nothing():
    # what the button showed, whether the server still runs an analysis
    assert state.analyze_click(cancel_shown=False, analysis_running=False) == "start"
    assert state.analyze_click(cancel_shown=True, analysis_running=True) == "cancel"
    assert state.analyze_click(cancel_shown=True, analysis_running=False) == "none"  # it ended meanwhile
    assert state.analyze_click(cancel_shown=False, analysis_running=True) == "none"  # a double click


def test_frame_labels_name_the_phases():
    result = small_result()
    assert state.frame_label(result.cine, result, 0) == "frame 1 (1/3) ED"
    assert state.frame_label(result.cine, result, 1) == "frame 2 (2/3) ES"
    assert state.frame_label(result.cine, None, 2) == "frame 3 (3/3)"
    assert state.frame_label(None, None, 0) == ""
    assert state.loaded_text("demo", result.cine) == (
        "Loaded demo: 3 frame(s) × 2 slices, 8 × 8 pixels of 1.25 × 1.25 × 10.0 mm."
    )


def test_the_initial_state_has_an_empty_result_and_every_slider():
    atlas = types.SimpleNamespace(explained_variance_ratio_=np.array([0.5, 0.25, 0.125, 0.1]))
    initial = state.initial_state(["demo"], "demo", "loading the network ...", "synthetic", atlas)
    assert initial["mode_explained"] == ["50.0 %", "25.0 %", "12.5 %"]
    assert [initial[f"mode_{k}"] for k in range(state.N_MODE_SLIDERS)] == [0.0] * state.N_MODE_SLIDERS
    assert initial["has_result"] is False and initial["indices_rows"] == [] and not initial["running"]


def test_fit_text_gives_volumes_and_mode_scores():
    fits = {"ED": types.SimpleNamespace(mesh=types.SimpleNamespace(endo_cavity_volume_ml=151.4))}
    assert (
        state.fit_text(fits, mode_sd=[1.04, -0.26])
        == "LV model ED: cavity 151 mL; mode scores +1.0 SD, -0.3 SD"
    )
    assert (
        state.fit_text(fits, mode_error="ES missing")
        == "LV model ED: cavity 151 mL; no mode scores (ES missing)"
    )


def test_cases_are_the_demo_then_the_acdc_patients(tmp_path):
    for name in ("patient002", "patient001", "notes"):
        (tmp_path / name).mkdir()
    for name in ("patient002", "patient001"):
        (tmp_path / name / "Info.cfg").write_text("ED: 1\n")
    assert resources.list_cases(tmp_path) == [resources.DEMO_CASE, "patient001", "patient002"]
    assert resources.list_cases(None) == [resources.DEMO_CASE]
    (tmp_path / "patient002" / "patient002_4d.nii.gz").write_bytes(b"")  # its whole cine: a second entry
    cases = resources.list_cases(tmp_path)
    assert cases == [resources.DEMO_CASE, "patient001", "patient002", "patient002 (all frames)"]
    assert resources.acdc_case(cases[3]) == ("patient002", True)
    assert resources.acdc_case(cases[2]) == ("patient002", False)


def test_the_atlas_panel_falls_back_to_the_synthetic_atlas(tmp_path):
    atlas, name = resources.load_app_atlas(None, acdc_dir=tmp_path / "acdc")
    assert name.startswith("synthetic demo atlas")
    assert len(atlas.explained_variance_ratio_) == 8


def test_the_engine_loads_in_the_background_and_reports_a_failure(monkeypatch):
    def broken(**kwargs):
        raise CardiacModelError("weights.pt: sha256 does not match the manifest")

    monkeypatch.setattr(resources, "load_model", broken)
    engine = resources.Engine(device="cpu")
    assert engine.device_text == "loading the network ..."
    engine.start().task.wait(timeout_s=30)
    assert engine.task.outcome is TaskOutcome.FAILED
    assert engine.error == "could not load the network: weights.pt: sha256 does not match the manifest"
    assert engine.device_text == engine.error
    with pytest.raises(CardiacError, match="could not load the network"):
        engine.models()


def test_the_engine_hands_out_the_loaded_models(monkeypatch):
    model = types.SimpleNamespace(device_text="cpu (2 threads)")
    classifier = types.SimpleNamespace(fit_all=lambda: None)
    monkeypatch.setattr(resources, "load_model", lambda **kwargs: model)
    monkeypatch.setattr(resources, "load_classifier", lambda: classifier)
    engine = resources.Engine(device="cpu").start()
    assert engine.models() == (model, classifier)
    assert engine.device_text == "cpu (2 threads)" and engine.error is None


def test_a_new_case_after_two_analyses_leaves_no_segmentation_or_volume_behind():
    """The stale overlay: a second result, then a new case, must not leave untracked proxy nodes."""
    slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
    from CardiacMTLLib.pipeline import measure
    from CardiacMTLLib.scene.cardiac import ModuleLogics
    from CardiacMTLLib.scene.study import Study
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    scene = slicer.vtkMRMLScene()
    sequences = slicer.vtkSlicerSequencesLogic()
    sequences.SetMRMLScene(scene)
    study = Study(scene, ModuleLogics(sequences, None))

    def count(kind: str) -> int:
        return scene.GetNumberOfNodesByClass(kind)

    case = generate_synthetic_cine(seed=0, num_frames=3, shape=(64, 64, 3))
    study.load_cine(case.cine, "first")
    result = measure(study.cine, case.labels.astype(np.uint8), provenance={})
    study.show_result(result)
    study.show_result(result)
    assert count("vtkMRMLSegmentationNode") == 1
    study.load_cine(case.cine, "second")
    assert count("vtkMRMLSegmentationNode") == 0
    assert count("vtkMRMLScalarVolumeNode") == 1


def test_downloads_name_their_file_and_type(tmp_path):
    files = {"pdf": tmp_path / "p001_report.pdf", "labels": tmp_path / "p001_labels.nii.gz"}
    assert state.download_rows(files) == [
        {"kind": "pdf", "name": "p001_report.pdf", "type": "application/pdf"},
        {"kind": "labels", "name": "p001_labels.nii.gz", "type": "application/gzip"},
    ]


def test_the_panel_figures_are_png_data_urls_and_absent_without_their_data():
    import base64

    from CardiacMTLLib.pipeline import measure
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    case = generate_synthetic_cine(seed=2, num_frames=6, shape=(64, 64, 4), subslices=1)
    figures = state.figures_state(measure(case.cine, case.labels, {"device": "cpu (test)"}))
    assert set(figures) == {"volume", "strain", "bullseye"}
    for url in figures.values():
        assert url.startswith("data:image/png;base64,")
        assert base64.b64decode(url.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    two_frames = small_result()
    two_frames.cine = Cine(
        data=np.zeros((2, 2, 8, 8)), spacing_mm=(1, 1, 1), affine=np.eye(4), frame_numbers=[1, 2]
    )
    assert state.figures_state(two_frames) == {}  # no curve of two points, no strain computed


class _StrokeWidget:
    """trame-slicer's paint widget as the brush sees it: a stroke is open until ``stop_painting``."""

    def __init__(self, painted: list, editor):
        self.painting, self.painted, self.editor = False, painted, editor

    def is_painting(self) -> bool:
        return self.painting

    def stop_painting(self) -> None:
        self.painting = False
        self.painted.append((self.editor.segment_id, self.editor.effect))


class _Editor:
    """The calls :class:`SegmentationBrush` makes on trame-slicer's SegmentationEditor."""

    def __init__(self):
        self.painted, self.segment_id, self.effect = [], None, None
        self.widget = _StrokeWidget(self.painted, self)
        pipeline = types.SimpleNamespace(widget=self.widget)
        self._effect = types.SimpleNamespace(pipelines=[lambda: pipeline])

    @property
    def active_effect(self):
        return self._effect if self.effect not in (None, "off") else None

    def set_active_segmentation(self, *_):
        pass

    def set_active_segment_id(self, segment_id):
        self.segment_id = segment_id

    def set_active_effect_type(self, effect_type):
        self.effect = effect_type.__name__
        return None

    def deactivate_effect(self):
        self.effect = "off"


def test_the_brush_paints_a_stroke_whose_release_is_still_on_its_way_before_it_changes():
    pytest.importorskip("trame_slicer", reason="trame-slicer is not installed")
    from CardiacMTLApps.web.editing import SegmentationBrush
    from CardiacMTLLib.scene.segmentation import LABEL_SEGMENT_IDS

    editor = _Editor()
    brush = SegmentationBrush(editor)
    brush.attach(object(), object())
    brush.set_mode("paint", label=1)
    assert not brush.finish_stroke() and editor.painted == []  # no stroke open: nothing to paint
    editor.widget.painting = True  # pressed and moved; the release has not arrived
    brush.set_mode("off")
    # painted with the structure and effect it was drawn with, before the effect went off
    assert editor.painted == [(LABEL_SEGMENT_IDS[1], "SegmentationEffectPaint")]
    assert editor.effect == "off" and not editor.widget.painting
    brush.set_mode("erase", label=2)
    editor.widget.painting = True
    brush.attach(object(), object())  # a new result: the open stroke goes to the old one first
    assert editor.painted[-1] == (LABEL_SEGMENT_IDS[2], "SegmentationEffectErase")


def test_the_apps_messages_reach_its_log_once_each():
    from CardiacMTLApps.web.serverlog import log_to

    app_logger = logging.getLogger("CardiacMTLApps.web")
    saved = list(app_logger.handlers), app_logger.level, app_logger.propagate
    first, second = io.StringIO(), io.StringIO()
    try:
        log_to(first)
        log_to(second)  # replaces the first: one line per message
        logging.getLogger("CardiacMTLApps.web.app").info("Done in 1.23 s")
        logging.getLogger("CardiacMTLApps.web.editing").info(
            "a brush stroke ended before its release arrived"
        )
    finally:
        app_logger.handlers[:], app_logger.level, app_logger.propagate = saved
    assert first.getvalue() == ""
    lines = second.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith("INFO Done in 1.23 s") and "brush stroke" in lines[1]
