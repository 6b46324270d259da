"""3D Slicer module CardiacMTL: short-axis cine MRI in, label maps, clinical indices and a report out.

A thin shell over the ``CardiacMTLLib`` package, which does all the work and is shared with the
``cardiac-mtl`` command and the browser app. ``CardiacMTLLib`` is imported inside methods only, so that
Slicer can list the module (and show its help) before the library's dependencies are installed.
"""

import logging
import pathlib
import tempfile

import ctk  # noqa: F401  (Slicer's Python environment provides these; scripted modules import them)
import qt  # noqa: F401
import slicer
import vtk  # noqa: F401
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

HOMEPAGE = "https://github.com/CardiacMTL/SlicerCardiacMTL#readme"

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
curve, clinical indices (volumes, ejection fractions, LV mass, wall thickness, BSA-indexed values) and a
one-page report. Inputs: an ACDC patient folder, a NIfTI 3D/4D cine or a DICOM cine series.
The same analysis runs from a terminal with <code>cardiac-mtl analyze</code>.
See the <a href="{HOMEPAGE}">documentation</a>.
"""
        self.parent.acknowledgementText = """
The segmentation networks are trained on the ACDC challenge data set: O. Bernard, A. Lalande, C. Zotti
et al., "Deep Learning Techniques for Automatic MRI Cardiac Multi-Structures Segmentation and Diagnosis:
Is the Problem Solved?", IEEE Transactions on Medical Imaging 37(11):2514&ndash;2525, 2018.
The 2D U-Net follows C. F. Baumgartner, L. M. Koch, M. Pollefeys and E. Konukoglu, "An Exploration of 2D
and 3D Deep Learning Techniques for Cardiac MR Image Segmentation", STACOM 2017 (ACDC challenge),
LNCS 10663:111&ndash;119, 2017.
"""


#
# CardiacMTLWidget
#


class CardiacMTLWidget(ScriptedLoadableModuleWidget):
    """The module panel: loads ``Resources/UI/CardiacMTL.ui``; the controls arrive with the GUI issue."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None
        self.ui = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CardiacMTL.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CardiacMTLLogic()
        self.ui.infoLabel.text = (
            "Segmentation, clinical indices and report of a short-axis cine. The panel is not built yet: "
            "from the Python console run<br><code>slicer.util.getModuleLogic('CardiacMTL')"
            ".analyze(path, out_dir)</code><br>or, from a terminal, <code>cardiac-mtl analyze PATH --out DIR</code>."
        )


#
# CardiacMTLLogic
#


class CardiacMTLLogic(ScriptedLoadableModuleLogic):
    """The module's actions, usable from the Python console and tests without the panel.

    Every method delegates to ``CardiacMTLLib`` so the numbers are those of the command line.
    """

    def analyze(self, path, out_dir, device="auto"):
        """Analyse the cine at ``path`` and write the results into ``out_dir``.

        ``path`` is an ACDC patient folder, a NIfTI 3D/4D cine or a folder holding a DICOM cine series;
        ``out_dir`` receives the label maps, ``indices.csv``/``indices.json`` and ``report.png`` (replaced
        only once complete). ``device`` is ``"auto"``, ``"cpu"`` or ``"cuda"``. Returns the library's
        ``AnalysisResult``.
        """
        from CardiacMTLLib import pipeline

        logging.info(f"CardiacMTL: analysing {path} on device {device!r} into {out_dir}")
        result = pipeline.analyze_path(path, out_dir, device=device)
        logging.info(f"CardiacMTL: results written to {out_dir}")
        return result


#
# CardiacMTLTest
#


class CardiacMTLTest(ScriptedLoadableModuleTest):
    """Self-test, run by Slicer's generic tests and the module's Reload & Test button."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_analyze_synthetic_cine()

    def test_analyze_synthetic_cine(self):
        """The logic segments a generated heart whose labels are known, and writes the outputs."""
        from CardiacMTLLib.synthetic import generate_synthetic_cine, write_synthetic_case

        self.delayDisplay("Generating a synthetic cine with known ground truth")
        case = generate_synthetic_cine()
        with tempfile.TemporaryDirectory(dir=slicer.app.temporaryPath) as work:
            work = pathlib.Path(work)
            write_synthetic_case(case, work / "input")
            self.delayDisplay("Analysing it")
            result = CardiacMTLLogic().analyze(
                work / "input" / "synthetic_cine.nii.gz", work / "analysis", device="cpu"
            )
            for name in ("indices.json", "indices.csv", "report.png"):
                self.assertTrue((work / "analysis" / name).is_file(), name)
        self.assertEqual(result.labels.shape, case.labels.shape)
        lv_found, lv_true = result.labels == 3, case.labels == 3
        lv_dice = 2 * (lv_found & lv_true).sum() / (lv_found.sum() + lv_true.sum())
        self.assertGreater(lv_dice, 0.85)
        self.delayDisplay("Test passed")
