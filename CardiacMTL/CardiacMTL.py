"""3D Slicer module CardiacMTL, a thin shell over ``CardiacMTLLib`` (which ``cardiac-mtl`` and its browser app
share); the Lib is imported in methods, so Slicer lists the module before the Lib's dependencies are there."""

import logging
import pathlib
from typing import Annotated

import qt
import slicer
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class CardiacMTL(ScriptedLoadableModule):
    """Module metadata, and the demo cine offered in Sample Data once Slicer has started."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "CardiacMTL"
        self.parent.categories = ["Cardiac"]
        self.parent.contributors = ["CardiacMTL contributors"]
        self.parent.helpText = """Short-axis cine MRI (ACDC, NIfTI, DICOM): the heart segmented on every frame, ED/ES,
indices, a diagnosis with probabilities and ACDC criteria, QC warnings and landmarks to drag, as <code>cardiac-mtl
analyze</code> finds them. <a href="https://github.com/CardiacMTL/SlicerCardiacMTL#readme">Documentation</a>."""
        self.parent.acknowledgementText = """Trained on ACDC: O. Bernard et al., IEEE TMI 37(11):2514-2525, 2018.
The 2D U-Net follows C. F. Baumgartner et al., STACOM 2017, LNCS 10663:111-119."""
        slicer.app.connect("startupCompleted()", self.registerSampleData)

    @staticmethod
    def registerSampleData():
        import SampleData  # the custom downloader generates the cine; nothing is downloaded

        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="Cardiac",
            sampleName="CardiacMTLSyntheticCine",
            uris="generated:CardiacMTLSyntheticCine",  # one source: Sample Data's own downloader is not used
            thumbnailFileName=str(pathlib.Path(__file__).parent / "Resources" / "Icons" / "CardiacMTL.png"),
            customDownloader=lambda source: CardiacMTLLogic().loadDemoCine(),
        )


@parameterNodeWrapper
class CardiacMTLParameterNode:
    """The panel's inputs: the cine (a volume sequence), the device and the patient's size (0 = unknown)."""

    inputSequence: slicer.vtkMRMLSequenceNode
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    heightCm: Annotated[float, WithinRange(0.0, 250.0)] = 0.0
    weightKg: Annotated[float, WithinRange(0.0, 350.0)] = 0.0  # io/patient.py: WEIGHT_KG_RANGE


class CardiacMTLWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: binds ``Resources/UI/CardiacMTL.ui`` to the parameter node; the logic does the work."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = self.ui = self._parameterNode = self._parameterNodeGuiTag = self._task = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        from CardiacMTLLib.requirements import unsupported_slicer_message  # standard library only

        if problem := unsupported_slicer_message(slicer.app.majorVersion, slicer.app.minorVersion):
            return self.layout.addWidget(qt.QLabel(problem))  # an older Slicer: the reason, no traceback
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CardiacMTL.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CardiacMTLLogic()
        self.ui.exportDirectoryButton.directory = str(pathlib.Path.home() / "CardiacMTL")
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.loadFileButton.connect("clicked(bool)", self.onLoadFile)
        self.ui.loadDemoButton.connect("clicked(bool)", lambda: self._load(self.logic.loadDemoCine))
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.exportDicomButton.connect("clicked(bool)", lambda: self.onExport(dicom=True))
        self.ui.updateResultsButton.connect("clicked(bool)", self.onUpdateResults)
        self._timer = qt.QTimer()
        self._timer.connect("timeout()", self.onPoll)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.exit)
        reenter = lambda *sceneEvent: self.enter() if self.parent.isEntered else None  # noqa: E731
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, reenter)
        self.enter()

    def cleanup(self) -> None:
        self.removeObservers()
        if self._task is not None:
            self._task.cancel()

    def enter(self) -> None:
        self.setParameterNode(self.logic.getParameterNode() if self.logic else None)

    def exit(self, *sceneEvent) -> None:
        self.setParameterNode(None)

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode, self._parameterNodeGuiTag = inputParameterNode, None
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def _run(self, action, failure: str):  # action() once set up (packages, models checked); None if failed
        try:
            self.ui.modelsLabel.text = self.logic.ensureDependencies()  # and the shipped models' sha256 sums
            return action()
        except Exception as exc:
            logging.exception(f"CardiacMTL: {failure}")
            self.ui.statusLabel.text = f"{failure}: {exc}"

    def onLoadFile(self) -> None:  # a non-NIfTI file stands for its folder (ACDC patient, DICOM series)
        if path := qt.QFileDialog.getOpenFileName(self.parent, "Cine: a NIfTI file, or a file of its folder"):
            self._load(lambda: self.logic.loadCine(path))

    def _load(self, action) -> None:
        if (nodes := self._run(action, "Could not load")) is not None:
            self._parameterNode.inputSequence = nodes.sequence
            self.ui.statusLabel.text = f"Loaded {nodes.sequence.GetNumberOfDataNodes()} frame(s)."

    def onApplyButton(self) -> None:
        p = self._parameterNode
        if self._task is not None:  # the button is Cancel while a task runs
            self._task.cancel()
            self.ui.statusLabel.text = "Cancelling after the current frame ..."
        elif p.inputSequence is None:
            self.ui.statusLabel.text = "Choose or load a cine first."
        else:
            args = (p.inputSequence, p.device, p.heightCm or None, p.weightKg or None)
            self._task = self._run(lambda: self.logic.startAnalysis(*args), "Cannot start")
            if self._task is not None:
                self.ui.applyButton.text = "Cancel"
                self._timer.start(100)

    def onPoll(self) -> None:  # the timer's slot: progress, then the result (no processEvents loop)
        from CardiacMTLLib.report import text

        status = self._task.poll()
        self.ui.progressBar.value, self.ui.progressBar.visible = status.percent, not status.finished
        self.ui.statusLabel.text = text.progress_text(status.done, status.total)
        if not status.finished:
            return
        task, self._task = self._task, None
        self._timer.stop()
        self.ui.applyButton.text = "Segment && diagnose"
        self.ui.statusLabel.text = text.outcome_text(status.outcome.value, task.error)
        if task.result is not None:
            self.showResults(self.logic.sceneLogic.show_result(task.result) and task.result)
            volume = self.logic.sceneLogic.cine_nodes.volume
            slicer.util.setSliceViewerLayers(background=volume, fit=True, rotateToVolumePlane=True)

    def onUpdateResults(self) -> None:  # after Segment Editor's corrections: results from the edited frames
        if result := self._run(self.logic.sceneLogic.update_from_segmentation, "Not updated"):
            self.showResults(result, edited=True)

    def showResults(self, result, edited: bool = False) -> None:
        from CardiacMTLLib.report import text

        self.ui.indicesTableView.setMRMLTableNode(self.logic.sceneLogic.nodes.indices)
        shown = text.panel_texts(result)
        self.ui.deviceLabel.text, self.ui.diagnosisLabel.text = shown.device, shown.diagnosis
        self.ui.qcLabel.text, self.ui.landmarksLabel.text = shown.qc, f"{shown.landmarks} (drag them)"
        self.ui.statusLabel.text = text.edits_text(result) if edited else self.ui.statusLabel.text

    def onExport(self, dicom: bool = False) -> None:  # the result files, or the DICOM SEG and SR
        folder = self.ui.exportDirectoryButton.directory
        folder = self._run(lambda: self.logic.export(folder, dicom), "Not exported")
        self.ui.statusLabel.text = f"Exported to {folder}" if folder else self.ui.statusLabel.text


class CardiacMTLLogic(ScriptedLoadableModuleLogic):
    """The module's actions for the panel, the Python console and tests; all delegate to ``CardiacMTLLib``."""

    _study = None  # one per scene, shared: Sample Data's loader, the panel and the console see one study

    def getParameterNode(self):
        return CardiacMTLParameterNode(super().getParameterNode())

    @property
    def sceneLogic(self):  # the Lib's scene.study.Study on Slicer's scene: the cine, the result, the actions
        if CardiacMTLLogic._study is None or CardiacMTLLogic._study.scene is not slicer.mrmlScene:
            from CardiacMTLLib.scene.study import Study

            CardiacMTLLogic._study = Study(slicer.mrmlScene, strain_nodes=True)  # strain table, plot, image
        return CardiacMTLLogic._study

    def ensureDependencies(self, confirm: bool = True) -> str:
        """Install what ``pyproject.toml`` lists and Slicer lacks (one confirmation), check the model files."""
        from CardiacMTLLib.scene.prepare import prepare_slicer

        return prepare_slicer(confirm)  # the check in words; RuntimeError when the user declined

    def loadCine(self, path, heightCm=None, weightKg=None):  # an ACDC folder, a NIfTI 3D/4D, a DICOM folder
        return self.sceneLogic.load_file(path, heightCm, weightKg)

    def loadDemoCine(self, seed: int = 0):  # generated, with known ground truth; nothing is downloaded
        return self.sceneLogic.load_demo(seed)

    def startAnalysis(self, sequence, device="auto", heightCm=None, weightKg=None, waitForCompletion=False):
        """``pipeline.analyze`` of the sequence's cine on a started ``tasks.BackgroundTask``."""
        task = self.sceneLogic.start_analysis(self.sceneLogic.cine_for(sequence, heightCm, weightKg), device)
        return task.wait() if waitForCompletion else task

    def process(self, sequence, device="auto", heightCm=None, weightKg=None):
        """Analyse and show the result in the scene, blocking; returns the ``AnalysisResult``."""
        result = self.startAnalysis(sequence, device, heightCm, weightKg, True).result_or_raise()
        return self.sceneLogic.show_result(result) and result

    def analyze(self, path, out_dir, device="auto"):
        """What ``cardiac-mtl analyze`` writes for the cine at ``path`` on ``device``, into ``out_dir``."""
        from CardiacMTLLib import actions

        return actions.analyze_path(path, out_dir, device=device)

    def export(self, folder, dicom: bool = False):
        """The result folder (landmarks as .mrk.json), or with ``dicom`` the DICOM SEG (ED, ES) and SR of a DICOM
        input, in a folder named after the case inside ``folder``; never over files the module did not write."""
        study = self.sceneLogic
        return study.export_dicom(folder) if dicom else study.export(folder, save_node=slicer.util.saveNode)


class CardiacMTLTest(ScriptedLoadableModuleTest):
    """Self-test, run by Slicer's generic tests and the module's Reload & Test button."""

    def runTest(self):
        logic = CardiacMTLLogic()  # a fresh Slicer has no torch or nibabel yet: install them first
        self.assertTrue(logic.ensureDependencies(confirm=False))  # or it raises
        from CardiacMTLLib.scene.cardiac import table_rows
        from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
        from CardiacMTLLib.types import Label

        slicer.mrmlScene.Clear()  # the demo cine analysed in the background becomes nodes and results
        case = generate_synthetic_cine(seed=1, num_frames=4, shape=(128, 128, 6))
        result = logic.process(logic.sceneLogic.load_cine(case.cine, name="synthetic cine").sequence, "auto")
        scene = logic.sceneLogic
        self.assertTrue((scene.labels_from_scene() == result.labels).all())
        found, true = ((labels == Label.LV_CAVITY).sum() for labels in (result.labels, case.labels))
        self.assertLess(abs(found - true) / true, 0.15)  # the LV cavity volume within 15 %
        self.assertIn("LVEF", {row["Metric"] for row in table_rows(scene.nodes.indices)})
        args = (scene.nodes.segmentation, "LV_cavity", scene.cine_nodes.volume)
        lv = slicer.util.arrayFromSegmentBinaryLabelmap(*args)
        lv[0, 0, :10] = 1  # Segment Editor paints ten background voxels into ED's LV, then "Update results"
        slicer.util.updateSegmentBinaryLabelmapFromArray(lv, *args)
        grown = scene.update_from_segmentation().indices["LVEDV (mL)"] - result.indices["LVEDV (mL)"]
        self.assertAlmostEqual(grown, 10 * case.cine.voxel_volume_ml, delta=0.011)  # test passed
