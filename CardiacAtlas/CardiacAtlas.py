"""3D Slicer module CardiacAtlas: LV finite-element model fitting and the LV shape atlas, a thin shell over
``CardiacAtlasLib`` (shared with ``cardiac-atlas`` and the browser app), imported inside methods so Slicer
lists the module before the Lib's dependencies are installed: ``fit`` fits the LV model to the CardiacMTL
module's result, ``atlas_io`` reads an atlas, ``scene.AtlasScene`` shows it with sliders."""

import logging
import pathlib
from typing import Annotated

import ctk
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

HOMEPAGE = "https://github.com/CardiacMTL/SlicerCardiacMTL#readme"


class CardiacAtlas(ScriptedLoadableModule):
    """Module metadata; uses the ScriptedLoadableModule base class of Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "CardiacAtlas"
        self.parent.categories = ["Cardiac"]
        self.parent.dependencies = ["CardiacMTL"]  # its Lib (on sys.path once it is loaded) and its result
        self.parent.contributors = ["CardiacMTL contributors"]
        self.parent.helpText = f"""Left-ventricular shape analysis: a finite-element LV model fitted to the
segmentation and landmarks of a cine (from the CardiacMTL module), and a shape atlas (Procrustes alignment
and principal modes) whose modes you can explore with sliders. The same functions run from a terminal with
<code>cardiac-atlas</code>. See the <a href="{HOMEPAGE}">documentation</a>."""
        self.parent.acknowledgementText = """Part of the CardiacMTL extension. Its cine data and label maps
come from the CardiacMTL module, whose networks are trained on the ACDC data set: O. Bernard et al., IEEE
Transactions on Medical Imaging 37(11):2514&ndash;2525, 2018. The CAP MESA atlas is from the Cardiac Atlas
Project."""


@parameterNodeWrapper
class CardiacAtlasParameterNode:
    """The atlas folder, the phase shown and how many mode sliders the panel offers."""

    atlasDirectory: pathlib.Path
    phase: Annotated[str, Choice(["ED", "ES"])] = "ED"
    numberOfSliders: Annotated[int, WithinRange(1, 10)] = 5


class CardiacAtlasWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: binds ``Resources/UI/CardiacAtlas.ui`` to the parameter node; sliders drive the logic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)  # the scene's close events are observed
        self.logic = self.ui = self._parameterNode = self._parameterNodeGuiTag = None
        self.sliders = []

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        from CardiacMTLLib.requirements import unsupported_slicer_message  # standard library only

        if problem := unsupported_slicer_message(slicer.app.majorVersion, slicer.app.minorVersion):
            return self.layout.addWidget(qt.QLabel(problem))  # an older Slicer: the reason, no traceback
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CardiacAtlas.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CardiacAtlasLogic()
        self.ui.loadAtlasButton.connect("clicked(bool)", self.onLoadAtlas)
        self.ui.demoAtlasButton.connect("clicked(bool)", self.onDemoAtlas)
        self.ui.fitButton.connect("clicked(bool)", self.onFit)
        self.ui.showPlotButton.connect("clicked(bool)", self.onShowPlot)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.setParameterNode(self.logic.getParameterNode())

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.setParameterNode(self.logic.getParameterNode() if self.logic else None)

    def exit(self) -> None:
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)
        self.logic.forgetNodes()
        self._rebuildSliders()

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def _run(self, done: str, action, *args) -> None:
        try:
            from CardiacMTLLib.scene.prepare import (
                prepare_slicer,
            )  # a fresh Slicer lacks some the Lib imports

            prepare_slicer()  # (scikit-learn, threadpoolctl, ...): installed after one confirmation
            action(*args)
        except Exception as exc:
            self.ui.statusLabel.text = f"Failed: {exc}"
            logging.exception("CardiacAtlas")
            return
        self.ui.statusLabel.text = done
        self._rebuildSliders()

    def onLoadAtlas(self) -> None:
        p, folder = self._parameterNode, self._parameterNode.atlasDirectory
        self._run(f"Atlas loaded from {folder}.", self.logic.loadAtlas, folder, p.phase, p.numberOfSliders)

    def onDemoAtlas(self) -> None:
        p = self._parameterNode
        self._run("Synthetic demo atlas built.", self.logic.buildDemoAtlas, p.phase, p.numberOfSliders)

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
            slider.minimum, slider.maximum = -atlasScene.sd_range, atlasScene.sd_range
            slider.singleStep, slider.value, slider.suffix = 0.1, 0.0, " SD"
            slider.connect("valueChanged(double)", lambda value, mode=mode: self.onSlider(mode, value))
            layout.addRow(f"Mode {mode + 1} ({100 * explained[mode]:.0f} %):", slider)
            self.sliders.append(slider)
        self.onSlider(0, 0.0)

    def onSlider(self, mode: int, value: float) -> None:
        self.logic.setModeSD(mode, value)
        atlasScene = self.logic.atlasScene
        cavity, myocardium = atlasScene.shape_volumes_ml()[0], atlasScene.shape_myocardial_volume_ml()
        self.ui.shapeLabel.text = f"cavity {cavity:.1f} mL, myocardium {myocardium:.1f} mL"

    def onShowPlot(self) -> None:
        if self.logic.atlasScene is not None:
            slicer.modules.plots.logic().ShowChartInLayout(self.logic.atlasScene.variance_chart)

    def onFit(self) -> None:
        try:  # a CardiacMTL result: its module installed the packages
            fits, scoresSD = self.logic.fitCardiacMTLResult()
        except Exception as exc:
            logging.exception("CardiacAtlas: not fitted")
            self.ui.fitLabel.text = f"Not fitted: {exc}"
            return
        texts = [f"{phase}: cavity {fit.mesh.endo_cavity_volume_ml:.0f} mL" for phase, fit in fits.items()]
        self.ui.fitLabel.text = "; ".join(texts)
        scores = ", ".join(f"{value:+.1f} SD" for value in scoresSD) if scoresSD is not None else ""
        self.ui.scoresLabel.text = f"mode scores: {scores}" if scores else ""


class CardiacAtlasLogic(ScriptedLoadableModuleLogic):
    """The module's actions, delegating to ``CardiacAtlasLib`` (usable from the Python console and tests)."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.atlasScene, self.fitModels = None, {}

    def getParameterNode(self):
        return CardiacAtlasParameterNode(super().getParameterNode())

    def forgetNodes(self) -> None:  # the scene is being closed: drop the references to this module's nodes
        self.atlasScene = None
        self.fitModels = {}

    def _show(self, atlas, phase: str, sliders: int = 5):
        from CardiacAtlasLib.scene import AtlasScene

        if self.atlasScene is not None:
            self.atlasScene.remove()
        self.atlasScene = AtlasScene(slicer.mrmlScene, atlas, phase=phase, n_sliders=sliders)
        return self.atlasScene

    def loadAtlas(self, folder, phase: str = "ED", sliders: int = 5):
        """Read an atlas folder (``cardiac-atlas build`` / ``import-cap``) and show its mean shape."""
        from CardiacAtlasLib.atlas_io import read_atlas

        return self._show(read_atlas(folder), phase, sliders)

    def buildDemoAtlas(self, phase: str = "ED", sliders: int = 5):
        """An atlas of 40 generated LV shapes with known modes (no data needed)."""
        from CardiacAtlasLib.synthetic import synthetic_atlas

        return self._show(synthetic_atlas(), phase, sliders)

    def setModeSD(self, mode: int, sd: float):
        """Move the displayed shape ``sd`` standard deviations along ``mode`` (0-based)."""
        return self.atlasScene.set_mode_sd({mode: sd})

    def fitCardiacMTLResult(self):
        """Fit the LV model to the CardiacMTL module's current result and show it; returns the fits by phase
        and, when an atlas is shown, the case's first mode scores in SD (else ``None``)."""
        from CardiacAtlasLib.fit import fit_analysis
        from CardiacAtlasLib.scene import add_lv_fits

        result = slicer.util.getModuleLogic("CardiacMTL").sceneLogic.result
        if result is None:
            raise RuntimeError("no CardiacMTL result: run Segment & diagnose in the CardiacMTL module first")
        fits = fit_analysis(result)
        self.fitModels = add_lv_fits(slicer.mrmlScene, fits, self.fitModels)
        if self.atlasScene is None:
            return fits, None
        scores = self.atlasScene.project_case({phase: fit.mesh for phase, fit in fits.items()})
        return fits, self.atlasScene.scores_sd(scores)


class CardiacAtlasTest(ScriptedLoadableModuleTest):
    """Self-test, run by Slicer's generic tests and the module's Reload & Test button."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from CardiacMTLLib.scene.prepare import prepare_slicer  # a fresh Slicer lacks what the Lib needs

        self.assertTrue(prepare_slicer(confirm=False))  # installs it first (or raises)
        self.setUp()
        self.test_mode_slider_reshapes_the_mean()

    def test_mode_slider_reshapes_the_mean(self):
        """The demo atlas shows its mean; +2 SD along mode 1 enlarges the cavity (the sign convention)."""
        from CardiacAtlasLib.scene import mesh_points

        logic = CardiacAtlasLogic()
        atlasScene = logic.buildDemoAtlas()
        before = mesh_points(atlasScene.model)
        volumeBefore = atlasScene.shape_volumes_ml()[0]
        logic.setModeSD(0, 2.0)
        self.assertGreater(abs(mesh_points(atlasScene.model) - before).max(), 0.1)
        self.assertGreater(atlasScene.shape_volumes_ml()[0], volumeBefore)
        self.assertEqual(atlasScene.variance_chart.GetNumberOfPlotSeriesNodes(), 2)
        self.delayDisplay("Test passed")
