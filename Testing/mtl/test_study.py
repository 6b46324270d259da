"""A study as the GUIs drive it (scene/study.py): load, analyse in the background, show, export."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install 'cardiac-mtl[app]')")

from CardiacMTLLib.errors import CardiacError  # noqa: E402
from CardiacMTLLib.scene.study import Study  # noqa: E402
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case  # noqa: E402
from CardiacMTLLib.tasks import TaskOutcome  # noqa: E402
from CardiacMTLLib.types import Label  # noqa: E402

SMALL = {"num_frames": 3, "shape": (96, 96, 4)}


@pytest.fixture
def study():
    return Study(slicer.vtkMRMLScene())


def test_demo_and_files_load_as_sequences(study, tmp_path):
    nodes = study.load_demo(seed=1, **SMALL)
    assert nodes.sequence.GetNumberOfDataNodes() == 3
    assert nodes.sequence.GetName().startswith("synthetic cine")
    folder = write_synthetic_case(generate_synthetic_cine(seed=2, **SMALL), tmp_path / "case")
    nodes = study.load_file(folder / "synthetic_cine.nii.gz", height_cm=180.0, weight_kg=80.0)
    assert nodes.sequence.GetNumberOfDataNodes() == 3
    assert (study.cine.height_cm, study.cine.weight_kg) == (180.0, 80.0)


def test_the_cine_for_a_sequence_is_the_loaded_one_with_the_size_given(study):
    nodes = study.load_demo(seed=1, **SMALL)
    loaded = study.cine
    cine = study.cine_for(nodes.sequence, height_cm=150.0)
    assert cine is not loaded and cine.data is loaded.data
    assert cine.height_cm == 150.0 and cine.weight_kg == loaded.weight_kg
    assert loaded.height_cm != 150.0  # the loaded cine keeps the input's size
    assert study.cine_for(nodes.sequence).height_cm == loaded.height_cm


def test_a_sequence_loaded_elsewhere_is_analysed_where_it_is(study):
    other = Study(study.scene)  # stands for Add Data or the DICOM browser: the user's sequence and browser
    nodes = other.load_demo(seed=4, **SMALL)
    count = study.scene.GetNumberOfNodes()
    cine = study.cine_for(nodes.sequence)
    assert np.allclose(cine.data, other.cine.data)
    mine = study.cine_nodes
    assert (mine.sequence, mine.browser, mine.volume) == (nodes.sequence, nodes.browser, nodes.volume)
    assert study.scene.GetNumberOfNodes() == count  # nothing copied
    study.clear()
    assert all(study.scene.IsNodePresent(node) for node in (nodes.sequence, nodes.browser, nodes.volume))


def test_one_study_per_scene_outlives_the_panel_that_asked():
    from CardiacMTLLib.scene.study import study_for

    scene = slicer.vtkMRMLScene()
    study = study_for(scene, strain_nodes=True)
    assert study_for(scene) is study and study.strain_nodes  # a reloaded module finds it
    assert study_for(slicer.vtkMRMLScene()) is not study


@pytest.mark.slow
def test_analysis_runs_in_the_background_and_its_result_is_exported(study, tmp_path):
    case = generate_synthetic_cine(seed=3, num_frames=3, shape=(128, 128, 6))
    study.load_cine(case.cine, name="case")
    task = study.start_analysis(device="cpu").wait(timeout_s=300)
    assert task.outcome is TaskOutcome.SUCCEEDED, task.error
    result = task.result
    found, true = ((labels == Label.LV_CAVITY).sum() for labels in (result.labels, case.labels))
    assert abs(found - true) / true < 0.15
    study.show_result(result)
    out = study.export(tmp_path)
    assert out.parent == tmp_path.resolve() and (out / "indices.csv").is_file()
    assert json.loads((out / "indices.json").read_text())["indices"]["ED frame"] is not None
    assert sorted(p.name for p in out.glob("*.mrk.json")) == sorted(
        ["landmarks.mrk.json"]
        + [f"landmarks_frame{result.cine.frame_numbers[f]}.mrk.json" for f in study.nodes.landmarks]
    )
    for f in study.nodes.landmarks:  # Slicer's markups format, read back by Slicer's own reader
        storage = slicer.vtkMRMLMarkupsJsonStorageNode()
        storage.SetFileName(str(out / f"landmarks_frame{result.cine.frame_numbers[f]}.mrk.json"))
        node = study.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
        assert storage.ReadData(node)
        assert node.GetNumberOfControlPoints() == study.nodes.landmarks[f].GetNumberOfControlPoints() > 0


def test_a_cancel_while_the_models_load_stops_before_the_network(study, monkeypatch):
    import CardiacMTLLib.scene.study as study_module

    study.load_demo(seed=1, **SMALL)
    ran = []
    monkeypatch.setattr(study_module, "analyze", lambda *args, **kwargs: ran.append(True))

    started, cancelled = threading.Event(), threading.Event()

    def load_models():  # the user presses Cancel while the network is loading
        started.set()
        cancelled.wait(10)
        return None, None

    task = study.start_analysis(load_models=load_models)
    assert started.wait(10)
    task.cancel()
    cancelled.set()
    assert task.wait(timeout_s=30).outcome is TaskOutcome.CANCELLED
    assert ran == []


def test_models_that_failed_to_load_fail_the_task(study):
    study.load_demo(seed=1, **SMALL)

    def load_models():
        raise CardiacError("could not load the network: weights.pt missing")

    task = study.start_analysis(load_models=load_models).wait(timeout_s=30)
    assert task.outcome is TaskOutcome.FAILED and "weights.pt missing" in str(task.error)


def test_export_without_a_result_says_what_to_do(study, tmp_path):
    study.load_demo(seed=1, **SMALL)
    with pytest.raises(CardiacError, match="Segment & diagnose"):
        study.export(tmp_path)


@pytest.mark.slow
def test_the_slicer_modules_self_test_passes_on_slicer_core():
    from CardiacMTLLib.scene.selftest import check_analysis_round_trip

    check_analysis_round_trip(Study(slicer.vtkMRMLScene()), device="cpu")  # raises AssertionError if not
