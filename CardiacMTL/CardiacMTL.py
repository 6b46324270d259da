"""3D Slicer module CardiacMTL, a thin shell over ``CardiacMTLLib`` (which ``cardiac-mtl`` and its browser app
share); the Lib is imported in methods, so Slicer lists the module before the Lib's dependencies are there."""

import logging
import pathlib
import sys
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

    # what a running analysis's result would no longer match: off until it ends (Segment & diagnose is Cancel)
    BUSY_WIDGETS = (
        "inputSelector loadFileButton loadDemoButton updateResultsButton exportButton exportDicomButton"
    )

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = self.ui = self._parameterNode = self._parameterNodeGuiTag = self._task = None
        self._listening = None  # the study whose edits refresh this panel (once the Lib is importable)

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
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        reenter = lambda *sceneEvent: self.enter() if self.parent.isEntered else None  # noqa: E731
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, reenter)
        self.enter()

    def cleanup(self) -> None:
        self.removeObservers()
        if self._task is not None:
            self._finishTask().cancel()
        if self._listening is not None:  # a reloaded panel listens in its place
            self._listening.remove_listener(self.showResults)

    def onSceneStartClose(self, *sceneEvent) -> None:  # the nodes go: the analysis stops, the study is let go
        if self._task is not None:
            self._finishTask().cancel()
            self.ui.statusLabel.text = "The scene was closed; the analysis was stopped."
        if self.logic is not None and CardiacMTLLogic.hasStudy():
            self.logic.sceneLogic.forget()
        self.exit()

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
            self._listen()
            return action()
        except Exception as exc:
            logging.exception(f"CardiacMTL: {failure}")
            self.ui.statusLabel.text = f"{failure}: {exc}"

    def _listen(self) -> None:  # the panel follows every change of the result (a landmark dragged, an update)
        if self._listening is not self.logic.sceneLogic:
            self._listening = self.logic.sceneLogic
            self._listening.add_listener(self.showResults)

    def _setBusy(self, busy: bool) -> None:
        for name in self.BUSY_WIDGETS.split():
            getattr(self.ui, name).enabled = not busy
        self.ui.applyButton.text = "Cancel" if busy else "Segment && diagnose"

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
        elif self._confirmReplacingEdits():
            args = (p.inputSequence, p.device, p.heightCm or None, p.weightKg or None)
            self._task = self._run(lambda: self.logic.startAnalysis(*args), "Cannot start")
            if self._task is not None:
                self._setBusy(True)
                self._timer.start(100)

    def _confirmReplacingEdits(self) -> bool:  # a new analysis replaces the user's corrections: ask first
        from CardiacMTLLib.report.text import replace_edits_text

        edits = self.logic.sceneLogic.edits_at_stake()
        if edits is None or slicer.util.confirmOkCancelDisplay(replace_edits_text(edits)):
            return True
        self.ui.statusLabel.text = "Not started: your corrections are kept (Export saves them)."
        return False

    def onPoll(self) -> None:  # the timer's slot: progress, then the result (no processEvents loop)
        from CardiacMTLLib.report import text

        status = self._task.poll()
        self.ui.progressBar.value, self.ui.progressBar.visible = status.percent, not status.finished
        self.ui.statusLabel.text = text.progress_text(status.done, status.total)
        if not status.finished:
            return
        task = self._finishTask()
        self.ui.statusLabel.text = text.outcome_text(status.outcome.value, task.error)
        if task.result is not None:
            shown = self._run(lambda: self.logic.sceneLogic.show_result(task.result), "Not shown")
            if shown is not None:
                self.showResults(task.result)
                volume = self.logic.sceneLogic.cine_nodes.volume
                slicer.util.setSliceViewerLayers(background=volume, fit=True, rotateToVolumePlane=True)

    def _finishTask(self):  # the task that ran; the panel back to its idle state
        task, self._task = self._task, None
        self._timer.stop()
        self.ui.progressBar.visible = False
        self._setBusy(False)
        return task

    def onUpdateResults(self) -> None:  # after Segment Editor's corrections: results from the edited frames
        if result := self._run(self.logic.sceneLogic.update_from_segmentation, "Not updated"):
            self.showResults(result, edited=True)

    def showResults(self, result, edited: bool | None = None) -> None:  # None: as the result says
        from CardiacMTLLib.report import text

        edited = bool(result.provenance.get("edited_frames")) if edited is None else edited
        self.ui.indicesTableView.setMRMLTableNode(self.logic.sceneLogic.nodes.indices)
        shown = text.panel_texts(result)
        self.ui.deviceLabel.text, self.ui.diagnosisLabel.text = shown.device, shown.diagnosis
        self.ui.qcLabel.text, self.ui.landmarksLabel.text = shown.qc, f"{shown.landmarks} (drag them)"
        self.ui.statusLabel.text = text.edits_text(result) if edited else self.ui.statusLabel.text

    def onExport(self, dicom: bool = False) -> None:  # the result files, or the DICOM SEG and SR
        folder = self.ui.exportDirectoryButton.directory  # Segment Editor's corrections are applied first
        folder = self._run(lambda: self.logic.export(folder, dicom), "Not exported")
        self.ui.statusLabel.text = f"Exported to {folder}" if folder else self.ui.statusLabel.text


class CardiacMTLLogic(ScriptedLoadableModuleLogic):
    """The module's actions for the panel, the Python console and tests; all delegate to ``CardiacMTLLib``."""

    def getParameterNode(self):
        return CardiacMTLParameterNode(super().getParameterNode())

    @property
    def sceneLogic(self):  # the Lib's scene.study.Study on Slicer's scene: the cine, the result, the actions
        from CardiacMTLLib.scene.study import study_for  # the Lib keeps it: Sample Data's loader, the panel,

        # the console and CardiacAtlas see one study, and a Reload of this file does not lose it
        return study_for(slicer.mrmlScene, strain_nodes=True)  # with the strain table, plot and bull's-eye

    # whether the Lib, which holds the study, was imported (asked without importing it)
    hasStudy = staticmethod(lambda: "CardiacMTLLib.scene.study" in sys.modules)

    def ensureDependencies(self, confirm: bool = True) -> str:
        """Install what ``pyproject.toml`` lists and Slicer lacks (one confirmation), check the model files."""
        from CardiacMTLLib.scene.prepare import prepare_slicer

        return prepare_slicer(confirm)  # the check in words; RuntimeError when the user declined

    def loadCine(self, path, heightCm=None, weightKg=None):  # an ACDC folder, a NIfTI 3D/4D, a DICOM folder
        return self.sceneLogic.load_file(path, heightCm, weightKg)

    def loadDemoCine(self, seed: int = 0):  # generated, with known ground truth; nothing is downloaded
        return self.sceneLogic.load_demo(seed)

    def startAnalysis(self, sequence, device="auto", heightCm=None, weightKg=None):
        """``pipeline.analyze`` of the sequence's cine on a started ``tasks.BackgroundTask``."""
        return self.sceneLogic.start_analysis(self.sceneLogic.cine_for(sequence, heightCm, weightKg), device)

    def process(self, sequence, device="auto", heightCm=None, weightKg=None):
        """Analyse and show the result in the scene, blocking; returns the ``AnalysisResult``."""
        result = self.startAnalysis(sequence, device, heightCm, weightKg).wait().result_or_raise()
        return self.sceneLogic.show_result(result) and result

    def analyze(self, path, out_dir, device="auto"):  # what ``cardiac-mtl analyze`` writes, into ``out_dir``
        from CardiacMTLLib import actions

        return actions.analyze_path(path, out_dir, device=device)

    def export(self, folder, dicom: bool = False):
        """The result folder (landmarks as .mrk.json), or with ``dicom`` the DICOM SEG (ED, ES) and SR of a DICOM
        input, in a folder named after the case inside ``folder``; never over files the module did not write."""
        study = self.sceneLogic
        return study.export_dicom(folder) if dicom else study.export(folder)


class CardiacMTLTest(ScriptedLoadableModuleTest):
    """Self-test, run by Slicer's generic tests and the module's Reload & Test button."""

    def runTest(self):
        logic = CardiacMTLLogic()  # a fresh Slicer has no torch or nibabel yet: install them first
        self.assertTrue(logic.ensureDependencies(confirm=False))  # or it raises
        from CardiacMTLLib.scene.selftest import check_analysis_round_trip

        slicer.mrmlScene.Clear()
        check_analysis_round_trip(logic.sceneLogic)  # analysis, nodes, a Segment Editor edit, Update results
        self.delayDisplay("Test passed")
