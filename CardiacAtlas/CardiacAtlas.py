"""3D Slicer module CardiacAtlas: LV finite-element model fitting and the LV shape atlas.

A thin shell over the ``CardiacAtlasLib`` package (shared with the ``cardiac-atlas`` command and the
browser app): ``fit.fit_analysis`` fits the LV model to the CardiacMTL module's result, ``atlas`` reads
or builds an atlas, and ``scene.AtlasScene`` shows the atlas mean as a model node that one slider per
mode (±3 SD) reshapes live, the explained-variance plot and the patient's mode scores.
"""

import logging
import pathlib
from typing import Annotated

import ctk
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

#
# CardiacAtlas
#


class CardiacAtlas(ScriptedLoadableModule):
    """Module metadata; uses the ScriptedLoadableModule base class of Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "CardiacAtlas"
        self.parent.categories = ["Cardiac"]
        self.parent.dependencies = []
        self.parent.contributors = ["CardiacMTL contributors"]
        self.parent.helpText = f"""
Left-ventricular shape analysis: a finite-element LV model fitted to the segmentation and landmarks of a
cine (from the CardiacMTL module), and a shape atlas (Procrustes alignment and principal modes) whose
modes you can explore with sliders. The same functions run from a terminal with
<code>cardiac-atlas</code>. See the <a href="{HOMEPAGE}">documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the CardiacMTL extension. Its cine data and label maps come from the CardiacMTL module, whose
networks are trained on the ACDC data set: O. Bernard et al., IEEE Transactions on Medical Imaging
37(11):2514&ndash;2525, 2018. The CAP MESA atlas is from the Cardiac Atlas Project.
"""


#
# Parameters
#


@parameterNodeWrapper
class CardiacAtlasParameterNode:
    """The atlas folder, the phase shown and how many mode sliders the panel offers."""

    atlasDirectory: pathlib.Path
    phase: Annotated[str, Choice(["ED", "ES"])] = "ED"
    numberOfSliders: Annotated[int, WithinRange(1, 10)] = 5


#
# CardiacAtlasWidget
#


class CardiacAtlasWidget(ScriptedLoadableModuleWidget):
    """The panel: binds ``Resources/UI/CardiacAtlas.ui`` to the parameter node; sliders drive the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None
        self.ui = None
        self.sliders = []
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CardiacAtlas.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CardiacAtlasLogic()
        for phase in ("ED", "ES"):
            self.ui.phaseComboBox.addItem(phase)
        self.ui.loadAtlasButton.connect("clicked(bool)", self.onLoadAtlas)
        self.ui.demoAtlasButton.connect("clicked(bool)", self.onDemoAtlas)
        self.ui.fitButton.connect("clicked(bool)", self.onFit)
        self.ui.showPlotButton.connect("clicked(bool)", self.onShowPlot)
        self.setParameterNode(self.logic.getParameterNode())

    def cleanup(self) -> None:
        self.removeObservers()

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def _run(self, action, done: str) -> None:
        try:
            action()
        except Exception as exc:
            self.ui.statusLabel.text = f"Failed: {exc}"
            logging.exception("CardiacAtlas")
            return
        self.ui.statusLabel.text = done
        self._rebuildSliders()

    def onLoadAtlas(self) -> None:
        folder = self._parameterNode.atlasDirectory
        self._run(
            lambda: self.logic.loadAtlas(folder, self._parameterNode.phase), f"Atlas loaded from {folder}."
        )

    def onDemoAtlas(self) -> None:
        self._run(lambda: self.logic.buildDemoAtlas(self._parameterNode.phase), "Synthetic demo atlas built.")

    def _rebuildSliders(self) -> None:
        layout = self.ui.modeSlidersWidget.layout()
        for slider in self.sliders:
            layout.removeRow(slider)
        self.sliders = []
        atlasScene = self.logic.atlasScene
        if atlasScene is None:
            return
        explained = atlasScene.atlas.explained_variance_ratio_
        for mode in range(atlasScene.n_sliders):
            slider = ctk.ctkSliderWidget()
            slider.minimum, slider.maximum, slider.singleStep, slider.value = -3.0, 3.0, 0.1, 0.0
            slider.suffix = " SD"
            slider.connect("valueChanged(double)", lambda value, mode=mode: self.onSlider(mode, value))
            layout.addRow(f"Mode {mode + 1} ({100 * explained[mode]:.0f} %):", slider)
            self.sliders.append(slider)
        self.onSlider(0, 0.0)

    def onSlider(self, mode: int, value: float) -> None:
        self.logic.setModeSD(mode, value)
        cavity, epi = self.logic.atlasScene.shape_volumes_ml()
        self.ui.shapeLabel.text = f"cavity {cavity:.1f} mL, myocardium {epi - cavity:.1f} mL"

    def onShowPlot(self) -> None:
        if self.logic.atlasScene is not None:
            slicer.modules.plots.logic().ShowChartInLayout(self.logic.atlasScene.variance_chart)

    def onFit(self) -> None:
        try:
            text = self.logic.fitCardiacMTLResult()
        except Exception as exc:
            self.ui.fitLabel.text = f"Not fitted: {exc}"
            return
        self.ui.fitLabel.text = text["fit"]
        self.ui.scoresLabel.text = text["scores"]


#
# CardiacAtlasLogic
#


class CardiacAtlasLogic(ScriptedLoadableModuleLogic):
    """The module's actions, delegating to ``CardiacAtlasLib`` (usable from the Python console and tests)."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.atlasScene = None
        self.fitModels = {}

    def getParameterNode(self):
        return CardiacAtlasParameterNode(super().getParameterNode())

    def _show(self, atlas, phase: str, sliders: int = 5):
        from CardiacAtlasLib.scene import AtlasScene

        if self.atlasScene is not None:
            self.atlasScene.remove()
        self.atlasScene = AtlasScene(slicer.mrmlScene, atlas, phase=phase, n_sliders=sliders)
        return self.atlasScene

    def loadAtlas(self, folder, phase: str = "ED"):
        """Read an atlas folder (``cardiac-atlas build`` / ``import-cap``) and show its mean shape."""
        from CardiacAtlasLib.atlas_io import read_atlas

        return self._show(read_atlas(folder), phase)

    def buildDemoAtlas(self, phase: str = "ED"):
        """An atlas of 40 generated LV shapes with known modes (no data needed)."""
        from CardiacAtlasLib.atlas import build_atlas
        from CardiacAtlasLib.synthetic import sample_shapes, synthetic_shape_model

        model = synthetic_shape_model()
        shapes, _ = sample_shapes(model, 40, seed=0)
        atlas = build_atlas(
            shapes, [f"synthetic_{i:02d}" for i in range(40)], model.faces_endo, model.faces_epi, model.n_endo
        )
        return self._show(atlas, phase)

    def setModeSD(self, mode: int, sd: float):
        """Move the displayed shape ``sd`` standard deviations along ``mode`` (0-based)."""
        return self.atlasScene.set_mode_sd({mode: sd})

    def fitCardiacMTLResult(self) -> dict:
        """Fit the LV model to the CardiacMTL module's current result, show it, and project it on the atlas."""
        from CardiacAtlasLib.fit import fit_analysis
        from CardiacAtlasLib.scene import add_lv_fits

        mtl = slicer.util.getModuleLogic("CardiacMTL")
        result = mtl.sceneLogic.result if mtl is not None else None
        if result is None:
            raise RuntimeError("no CardiacMTL result: run Segment & diagnose in the CardiacMTL module first")
        fits = fit_analysis(result)
        self.fitModels = add_lv_fits(slicer.mrmlScene, fits, self.fitModels)
        fit_text = "; ".join(f"{p}: cavity {f.mesh.endo_cavity_volume_ml:.0f} mL" for p, f in fits.items())
        scores_text = ""
        if self.atlasScene is not None:
            scores = self.atlasScene.project_case({p: f.mesh for p, f in fits.items()})
            sd = (
                scores[: self.atlasScene.n_sliders]
                / self.atlasScene.atlas.sd_mm_[: self.atlasScene.n_sliders]
            )
            scores_text = "mode scores: " + ", ".join(f"{v:+.1f} SD" for v in sd)
        return {"fit": fit_text, "scores": scores_text}


#
# CardiacAtlasTest
#


class CardiacAtlasTest(ScriptedLoadableModuleTest):
    """Self-test, run by Slicer's generic tests and the module's Reload & Test button."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_mode_slider_reshapes_the_mean()

    def test_mode_slider_reshapes_the_mean(self):
        """The demo atlas shows its mean; +2 SD along mode 1 enlarges the cavity (the atlas' sign convention)."""
        import numpy as np

        from CardiacAtlasLib.scene import mesh_points

        logic = CardiacAtlasLogic()
        atlasScene = logic.buildDemoAtlas()
        before = mesh_points(atlasScene.model)
        volume_before = atlasScene.shape_volumes_ml()[0]
        logic.setModeSD(0, 2.0)
        self.assertFalse(np.allclose(mesh_points(atlasScene.model), before))
        self.assertGreater(atlasScene.shape_volumes_ml()[0], volume_before)
        self.assertEqual(atlasScene.variance_chart.GetNumberOfPlotSeriesNodes(), 2)
        self.delayDisplay("Test passed")
