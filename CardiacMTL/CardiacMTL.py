"""3D Slicer module CardiacMTL: short-axis cine MRI in, segmentation, clinical indices, diagnosis and landmarks out.

A thin shell over the ``CardiacMTLLib`` package, which does all the work and is shared with the
``cardiac-mtl`` command and the browser app: ``pipeline.analyze`` computes, ``scene.CardiacScene`` turns
the result into nodes (volume sequence and browser, segmentation sequence, indices table, volume-curve
plot, named landmark markups) and landmark edits back into results. ``CardiacMTLLib`` is imported inside
methods only, so Slicer lists the module (and shows its help) before the library's dependencies are
installed; they are installed on first use, after one confirmation, and never replace what Slicer ships.
"""

import importlib.util
import logging
import pathlib
import queue
import tempfile
import threading
from typing import Annotated

import ctk  # noqa: F401  (Slicer's Python environment provides these; scripted modules import them)
import qt
import slicer
import vtk  # noqa: F401
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

HOMEPAGE = "https://github.com/CardiacMTL/SlicerCardiacMTL#readme"
# import name -> pip requirement, for what the library needs beyond Slicer's own Python. numpy, scipy,
# SimpleITK and VTK are Slicer's and are never installed or upgraded from here.
DEPENDENCIES = {
    "torch": "torch>=2.2",
    "nibabel": "nibabel>=5.0",
    "pydicom": "pydicom>=2.4",
    "sklearn": "scikit-learn>=1.3",
    "matplotlib": "matplotlib>=3.7",
    "tqdm": "tqdm>=4.60",
}
SLICER_OWNED = ("numpy", "scipy", "SimpleITK", "vtk")
POLL_MS = 100

#
# CardiacMTL
#


class CardiacMTL(ScriptedLoadableModule):
    """Module metadata; uses the ScriptedLoadableModule base class of Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "CardiacMTL"
        self.parent.categories = ["Cardiac"]
        self.parent.dependencies = []
        self.parent.contributors = ["CardiacMTL contributors"]
        self.parent.helpText = f"""
Short-axis cardiac cine MRI analysis: the left-ventricular (LV) cavity, the LV myocardium and the
right-ventricular (RV) cavity segmented on every frame, end-diastole and end-systole from the LV volume
curve, clinical indices (volumes, ejection fractions, LV mass, wall thickness, BSA-indexed values), a
diagnosis with its probabilities and the ACDC criteria, QC warnings and landmarks you can drag.
Inputs: an ACDC patient folder, a NIfTI 3D/4D cine or a DICOM cine series (a volume sequence).
The same analysis runs from a terminal with <code>cardiac-mtl analyze</code> and in a browser with
<code>cardiac-mtl app</code>. See the <a href="{HOMEPAGE}">documentation</a>.
"""
        self.parent.acknowledgementText = """
The segmentation networks are trained on the ACDC challenge data set: O. Bernard, A. Lalande, C. Zotti
et al., "Deep Learning Techniques for Automatic MRI Cardiac Multi-Structures Segmentation and Diagnosis:
Is the Problem Solved?", IEEE Transactions on Medical Imaging 37(11):2514&ndash;2525, 2018.
The 2D U-Net follows C. F. Baumgartner, L. M. Koch, M. Pollefeys and E. Konukoglu, "An Exploration of 2D
and 3D Deep Learning Techniques for Cardiac MR Image Segmentation", STACOM 2017 (ACDC challenge),
LNCS 10663:111&ndash;119, 2017.
"""
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Offer the generated demo cine in the Sample Data module (made on request; nothing is downloaded)."""
    try:
        import SampleData
    except ImportError:
        return

    def generate(source=None):
        return CardiacMTLLogic().loadDemoCine()

    try:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="Cardiac",
            sampleName="CardiacMTLSyntheticCine",
            uris=[],
            fileNames=[],
            nodeNames=["synthetic cine"],
            thumbnailFileName=str(pathlib.Path(__file__).parent / "Resources" / "Icons" / "CardiacMTL.png"),
            customDownloader=generate,
        )
    except TypeError:  # a Slicer whose SampleData has no custom downloaders: the panel's button remains
        logging.info("CardiacMTL: this Slicer's SampleData cannot register a generated case")


#
# Parameters
#


@parameterNodeWrapper
class CardiacMTLParameterNode:
    """The panel's inputs: the cine (a volume sequence), the device and the patient's size (0 = unknown)."""

    inputSequence: slicer.vtkMRMLSequenceNode
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    heightCm: Annotated[float, WithinRange(0.0, 250.0)] = 0.0
    weightKg: Annotated[float, WithinRange(0.0, 400.0)] = 0.0


#
# CardiacMTLWidget
#


class CardiacMTLWidget(ScriptedLoadableModuleWidget):
    """The panel: binds ``Resources/UI/CardiacMTL.ui`` to the parameter node; the logic does the work."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None
        self.ui = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._task = None
        self._timer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CardiacMTL.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CardiacMTLLogic()
        for device in ("auto", "cpu", "cuda"):
            self.ui.deviceComboBox.addItem(device)
        self.ui.progressBar.setVisible(False)
        self.ui.exportDirectoryButton.directory = str(pathlib.Path.home() / "CardiacMTL")
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.loadFileButton.connect("clicked(bool)", self.onLoadFile)
        self.ui.loadDemoButton.connect("clicked(bool)", self.onLoadDemo)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.connect("timeout()", self.onPoll)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()
        if self._task is not None:
            self._task.cancel()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    # ---- actions
    def _ready(self) -> bool:
        """Dependencies installed (after one confirmation) and the shipped models intact."""
        try:
            if not self.logic.ensureDependencies(confirm=True):
                self.ui.statusLabel.text = (
                    "The analysis needs the packages listed above; nothing was installed."
                )
                return False
            self.ui.modelsLabel.text = self.logic.modelCatalogueStatus()
        except Exception as exc:
            self.ui.statusLabel.text = f"Set-up failed: {exc}"
            logging.exception("CardiacMTL set-up")
            return False
        return True

    def onLoadFile(self) -> None:
        path = qt.QFileDialog.getOpenFileName(
            self.parent, "Cine (NIfTI file, or any file inside an ACDC or DICOM folder)"
        )
        if not path or not self._ready():
            return
        path = pathlib.Path(path)
        if not path.name.endswith((".nii", ".nii.gz")):
            path = path.parent  # an ACDC folder or a DICOM series folder
        self._load(lambda: self.logic.loadCine(path))

    def onLoadDemo(self) -> None:
        if self._ready():
            self._load(self.logic.loadDemoCine)

    def _load(self, action) -> None:
        try:
            nodes = action()
        except Exception as exc:
            self.ui.statusLabel.text = f"Could not load: {exc}"
            return
        self._parameterNode.inputSequence = nodes.sequence
        self.ui.statusLabel.text = f"Loaded {nodes.sequence.GetNumberOfDataNodes()} frame(s)."

    def onApplyButton(self) -> None:
        if self._task is not None:  # the button is Cancel while a task runs
            self._task.cancel()
            self.ui.statusLabel.text = "Cancelling after the current frame ..."
            return
        if not self._ready():
            return
        parameters = self._parameterNode
        if parameters.inputSequence is None:
            self.ui.statusLabel.text = "Choose or load a cine first."
            return
        try:
            self._task = self.logic.startAnalysis(
                parameters.inputSequence,
                device=parameters.device,
                heightCm=parameters.heightCm or None,
                weightKg=parameters.weightKg or None,
            )
        except Exception as exc:
            self.ui.statusLabel.text = f"Cannot start: {exc}"
            return
        self.ui.applyButton.text = "Cancel"
        self.ui.progressBar.setVisible(True)
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = "Loading the network ..."
        self._timer.start()

    def onPoll(self) -> None:
        """Timer slot: show progress; when the task is over, show its result (no processEvents loop)."""
        task = self._task
        for kind, payload in task.drain():
            if kind == "progress":
                done, total = payload
                self.ui.progressBar.maximum = total
                self.ui.progressBar.value = done
                self.ui.statusLabel.text = f"Segmenting frame {done} of {total} on {task.deviceText} ..."
        if not task.done:
            return
        self._timer.stop()
        self._task = None
        self.ui.applyButton.text = "Segment && diagnose"
        self.ui.progressBar.setVisible(False)
        if task.outcome == "cancelled":
            self.ui.statusLabel.text = "Cancelled; nothing was changed."
        elif task.outcome == "failed":
            self.ui.statusLabel.text = f"Failed: {task.error}"
        else:
            self.logic.showResult(task.result)
            self._showResult(task.result)
            self.ui.statusLabel.text = "Done."

    def _showResult(self, result) -> None:
        text = self.logic.describe(result)
        self.ui.deviceLabel.text = result.provenance.get("device", "")
        self.ui.diagnosisLabel.text = text["diagnosis"]
        self.ui.qcLabel.text = text["qc"]
        self.ui.landmarksLabel.text = text["landmarks"]
        self.ui.indicesTableView.setMRMLTableNode(self.logic.sceneLogic.nodes.indices)
        slicer.util.setSliceViewerLayers(background=self.logic.sceneLogic.cine_nodes.volume, fit=True)

    def onExport(self) -> None:
        try:
            folder = self.logic.export(self.ui.exportDirectoryButton.directory)
        except Exception as exc:
            self.ui.statusLabel.text = f"Export failed: {exc}"
            return
        self.ui.statusLabel.text = f"Exported to {folder}"


#
# Background analysis
#


class AnalysisTask:
    """``pipeline.analyze`` on a worker thread; progress and the outcome are read from a queue by a Qt timer.

    Cancel is cooperative: the progress callback raises after the current frame, so a cancelled run
    changes nothing. ``outcome`` is ``"succeeded"``, ``"failed"`` or ``"cancelled"`` once ``done``.
    """

    class Cancelled(Exception):
        pass

    def __init__(self, cine, device: str):
        self.cine = cine
        self.device = device
        self.deviceText = device
        self.result = None
        self.error = None
        self.outcome = None
        self.done = False
        self._messages = queue.Queue()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "AnalysisTask":
        self._thread.start()
        return self

    def wait(self) -> "AnalysisTask":
        self._thread.join()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def drain(self) -> list:
        items = []
        while not self._messages.empty():
            items.append(self._messages.get_nowait())
        return items

    def _progress(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise AnalysisTask.Cancelled()
        self._messages.put(("progress", (done, total)))

    def _run(self) -> None:
        from CardiacMTLLib.models.registry import load_model
        from CardiacMTLLib.pipeline import analyze

        try:
            model = load_model(device=self.device)
            self.deviceText = model.device_text
            self.result = analyze(self.cine, model=model, progress=self._progress)
            self.outcome = "succeeded"
        except AnalysisTask.Cancelled:
            self.outcome = "cancelled"
        except Exception as exc:  # shown in the panel with its cause
            self.error = str(exc)
            self.outcome = "failed"
            logging.exception("CardiacMTL analysis")
        finally:
            self.done = True


#
# CardiacMTLLogic
#


class CardiacMTLLogic(ScriptedLoadableModuleLogic):
    """The module's actions, usable from the Python console and tests without the panel.

    Every method delegates to ``CardiacMTLLib`` (numbers: ``pipeline``; nodes: ``scene.CardiacScene``), so
    results are those of the command line and the browser app.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._sceneLogic = None

    def getParameterNode(self):
        return CardiacMTLParameterNode(super().getParameterNode())

    @property
    def sceneLogic(self):
        if self._sceneLogic is None or self._sceneLogic.scene is not slicer.mrmlScene:
            from CardiacMTLLib.scene.cardiac import CardiacScene

            self._sceneLogic = CardiacScene(slicer.mrmlScene)
        return self._sceneLogic

    # ---- set-up
    @staticmethod
    def missingDependencies() -> list:
        return [spec for name, spec in DEPENDENCIES.items() if importlib.util.find_spec(name) is None]

    def ensureDependencies(self, confirm: bool = True) -> bool:
        """Install what is missing (torch through SlicerPyTorch when present), after one confirmation."""
        missing = self.missingDependencies()
        if not missing:
            return True
        if confirm and not slicer.util.confirmOkCancelDisplay(
            "CardiacMTL needs these Python packages, which will be installed now (once):\n"
            + "\n".join(missing)
            + "\n\nSlicer's own numpy, SciPy, SimpleITK and VTK are left as they are.",
            windowTitle="CardiacMTL: install dependencies",
        ):
            return False
        if any(spec.startswith("torch") for spec in missing):
            try:
                import PyTorchUtils  # the SlicerPyTorch extension picks the right CUDA build

                PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False)
            except ImportError:
                slicer.util.pip_install("torch")
            missing = [s for s in missing if not s.startswith("torch")]
        for spec in missing:
            # pip's default only-if-needed strategy leaves Slicer's numpy, SciPy and SimpleITK in place
            slicer.util.pip_install(spec)
        still = self.missingDependencies()
        if still:
            raise RuntimeError(f"still missing after installing: {still}")
        return True

    @staticmethod
    def modelCatalogueStatus() -> str:
        """The shipped model catalogue checked file by file against its sha256 sums."""
        import json

        from CardiacMTLLib.models.registry import WEIGHTS_DIR, sha256_of

        catalogue = json.loads((WEIGHTS_DIR / "catalogue.json").read_text())
        lines = []
        for key, entry in catalogue["models"].items():
            problems = []
            for name, digest in entry.get("files", {}).items():
                path = WEIGHTS_DIR / entry.get("folder", key) / name
                if not path.is_file():
                    problems.append(f"{name} missing")
                elif sha256_of(path) != digest:
                    problems.append(f"{name} corrupt (sha256 mismatch)")
            state = "ok" if not problems else "; ".join(problems)
            lines.append(f"{entry.get('model_id', key)} {entry.get('version', '')}: {state}")
        return "\n".join(lines)

    # ---- loading
    def loadCine(self, path, heightCm=None, weightKg=None):
        """Read a cine (ACDC folder, NIfTI 3D/4D, DICOM folder) into a volume sequence with a browser."""
        from CardiacMTLLib.io.cine import read_cine

        cine = read_cine(path, height_cm=heightCm, weight_kg=weightKg)
        return self.sceneLogic.load_cine(cine, name=pathlib.Path(str(path)).name.split(".")[0] or "cine")

    def loadDemoCine(self, seed: int = 0):
        """The generated demo cine (known ground truth) as a volume sequence; nothing is downloaded."""
        from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

        case = generate_synthetic_cine(seed=seed)
        return self.sceneLogic.load_cine(case.cine, name="synthetic cine")

    def cineFor(self, sequenceNode, heightCm=None, weightKg=None):
        """The library's cine for a sequence: the one this logic loaded, or one read from the nodes."""
        import copy

        from CardiacMTLLib.scene.cardiac import cine_from_sequence

        logic = self.sceneLogic
        if logic.cine_nodes is not None and logic.cine_nodes.sequence is sequenceNode:
            cine = copy.copy(logic.cine)
        else:
            cine = cine_from_sequence(sequenceNode)
            logic.load_cine(cine, name=sequenceNode.GetName())
        if heightCm:
            cine.height_cm = heightCm
        if weightKg:
            cine.weight_kg = weightKg
        return cine

    # ---- analysis
    def startAnalysis(
        self, sequenceNode, device="auto", heightCm=None, weightKg=None, waitForCompletion=False
    ):
        """Start ``pipeline.analyze`` in the background; returns the :class:`AnalysisTask`.

        With ``waitForCompletion`` (scripts, tests) it returns when the task is over.
        """
        cine = self.cineFor(sequenceNode, heightCm, weightKg)
        task = AnalysisTask(cine, device).start()
        return task.wait() if waitForCompletion else task

    def process(self, sequenceNode, device="auto", heightCm=None, weightKg=None):
        """Analyse and show the result in the scene, blocking; returns the ``AnalysisResult``."""
        task = self.startAnalysis(sequenceNode, device, heightCm, weightKg, waitForCompletion=True)
        if task.outcome != "succeeded":
            raise RuntimeError(f"analysis {task.outcome}: {task.error}")
        self.showResult(task.result)
        return task.result

    def showResult(self, result):
        self._attachLandmarks(result)
        return self.sceneLogic.show_result(result)

    @staticmethod
    def _attachLandmarks(result) -> None:
        if getattr(result, "landmarks", None) is not None:
            return
        try:
            from CardiacMTLLib.analysis.landmarks import rv_insertion as landmarks

            finder = getattr(landmarks, "detect_landmarks", None)
            result.landmarks = finder(result) if finder is not None else []
        except Exception as exc:  # the analysis stands without landmarks
            logging.warning(f"CardiacMTL: no landmarks ({exc})")
            result.landmarks = []

    def analyze(self, path, out_dir, device="auto"):
        """Analyse the cine at ``path`` and write the results into ``out_dir`` (as ``cardiac-mtl analyze``).

        ``path`` is an ACDC patient folder, a NIfTI 3D/4D cine or a folder holding a DICOM cine series;
        ``out_dir`` receives the label maps, ``indices.csv``/``indices.json`` and ``report.png`` (replaced
        only once complete). ``device`` is ``"auto"``, ``"cpu"`` or ``"cuda"``. Returns the library's
        ``AnalysisResult``.
        """
        from CardiacMTLLib import actions

        logging.info(f"CardiacMTL: analysing {path} on device {device!r} into {out_dir}")
        result = actions.analyze_path(path, out_dir, device=device)
        logging.info(f"CardiacMTL: results written to {out_dir}")
        return result

    @staticmethod
    def describe(result) -> dict:
        """Panel texts for a result: diagnosis with probabilities and criteria, QC, landmarks."""
        diagnosis = result.diagnosis or {}
        if diagnosis.get("class"):
            probabilities = ", ".join(f"{c} {100 * p:.0f} %" for c, p in diagnosis["probabilities"].items())
            criteria = "; ".join(f"{c}: {s}" for c, s in (diagnosis.get("criteria_summary") or {}).items())
            diagnosis_text = (
                f"<b>{diagnosis['class']}</b> ({diagnosis.get('class_name', '')})<br>{probabilities}"
                f"<br>criteria met: {criteria}"
            )
        else:
            diagnosis_text = f"No diagnosis: {diagnosis.get('error', 'not computed')}"
        qc = "<br>".join(f"frame {f['frame']} slice {f.get('slice')}: {f['problem']}" for f in result.qc)
        landmarks = getattr(result, "landmarks", None) or []
        return {
            "diagnosis": diagnosis_text,
            "qc": f"QC warnings:<br>{qc}" if qc else "QC: no warnings",
            "landmarks": f"{len(landmarks)} landmarks ({sum(bool(lm.get('edited')) for lm in landmarks)} edited); "
            "drag them in the slice views",
        }

    def export(self, folder):
        """Write indices (CSV, JSON), label maps, report and the landmarks (.mrk.json) into a new folder
        named after the case inside ``folder``; an earlier export of the case there is replaced, nothing
        else is touched."""
        from CardiacMTLLib.outputs import export_folder, write_outputs

        result = self.sceneLogic.result
        if result is None:
            raise RuntimeError("nothing to export: run Segment & diagnose first")

        def save_markups(staging):
            for frame, node in self.sceneLogic.nodes.landmarks.items():
                name = f"landmarks_frame{result.cine.frame_numbers[frame]}.mrk.json"
                slicer.util.saveNode(node, str(staging / name))

        return write_outputs(
            result,
            export_folder(result, folder),
            overwrite=True,
            inputs=(result.cine.source,),
            extra=save_markups,
        )


#
# CardiacMTLTest
#


class CardiacMTLTest(ScriptedLoadableModuleTest):
    """Self-test, run by Slicer's generic tests and the module's Reload & Test button."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_generated_cine_becomes_nodes_and_results()
        self.setUp()
        self.test_analyze_writes_the_command_line_outputs()

    def test_generated_cine_becomes_nodes_and_results(self):
        """Load the demo cine, analyse it in the background, and check the nodes the scene logic made."""
        import numpy as np

        from CardiacMTLLib.scene.cardiac import table_rows
        from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

        self.delayDisplay("Generating a small synthetic cine with known ground truth")
        case = generate_synthetic_cine(seed=1, num_frames=4, shape=(128, 128, 6))
        logic = CardiacMTLLogic()
        nodes = logic.sceneLogic.load_cine(case.cine, name="synthetic cine")
        self.assertEqual(nodes.sequence.GetNumberOfDataNodes(), 4)
        self.delayDisplay("Segmenting in the background")
        result = logic.process(nodes.sequence, device="auto")
        scene = logic.sceneLogic
        self.assertEqual(scene.nodes.segmentation_sequence.GetNumberOfDataNodes(), 4)
        self.assertTrue(np.array_equal(scene.labels_from_scene(), result.labels))
        lv_found, lv_true = result.labels == 3, case.labels == 3
        self.assertGreater(2 * (lv_found & lv_true).sum() / (lv_found.sum() + lv_true.sum()), 0.85)
        metrics = {row["Metric"] for row in table_rows(scene.nodes.indices)}
        self.assertIn("LVEF", metrics)
        self.delayDisplay("Test passed")

    def test_analyze_writes_the_command_line_outputs(self):
        from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case

        case = generate_synthetic_cine(seed=2, num_frames=4, shape=(128, 128, 6))
        with tempfile.TemporaryDirectory(dir=slicer.app.temporaryPath) as work:
            work = pathlib.Path(work)
            write_synthetic_case(case, work / "input")
            CardiacMTLLogic().analyze(
                work / "input" / "synthetic_cine.nii.gz", work / "analysis", device="cpu"
            )
            for name in ("indices.json", "indices.csv", "report.png"):
                self.assertTrue((work / "analysis" / name).is_file(), name)
        self.delayDisplay("Test passed")
