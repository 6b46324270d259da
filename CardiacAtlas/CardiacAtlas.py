"""3D Slicer module CardiacAtlas: LV finite-element model fitting and the LV shape atlas.

A thin shell over the ``CardiacAtlasLib`` package (shared with the ``cardiac-atlas`` command). The logic
is empty until the atlas issue fills the library; the module is in place so that the extension layout,
its packaging and its self-test already work.
"""

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
Left-ventricular shape analysis: a finite-element LV model fitted to contours and landmarks of a cine,
and a shape atlas (Procrustes alignment and principal modes) built from many fitted models.
The same functions run from a terminal with <code>cardiac-atlas</code>.
See the <a href="{HOMEPAGE}">documentation</a>.
"""
        self.parent.acknowledgementText = """
Part of the CardiacMTL extension. Its cine data and label maps come from the CardiacMTL module, whose
networks are trained on the ACDC data set: O. Bernard et al., IEEE Transactions on Medical Imaging
37(11):2514&ndash;2525, 2018.
"""


#
# CardiacAtlasWidget
#


class CardiacAtlasWidget(ScriptedLoadableModuleWidget):
    """The module panel: loads ``Resources/UI/CardiacAtlas.ui``; the controls arrive with the GUI issue."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None
        self.ui = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CardiacAtlas.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CardiacAtlasLogic()
        self.ui.infoLabel.text = (
            "LV model fitting and the shape atlas. The panel is not built yet: "
            "use <code>cardiac-atlas</code> from a terminal."
        )


#
# CardiacAtlasLogic
#


class CardiacAtlasLogic(ScriptedLoadableModuleLogic):
    """The module's actions, delegating to ``CardiacAtlasLib``; none yet."""


#
# CardiacAtlasTest
#


class CardiacAtlasTest(ScriptedLoadableModuleTest):
    """Self-test, run by Slicer's generic tests and the module's Reload & Test button."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_library_and_logic_load()

    def test_library_and_logic_load(self):
        """The library imports inside Slicer and the logic can be created without the panel."""
        import CardiacAtlasLib

        self.assertTrue(CardiacAtlasLib.__version__)
        self.assertIsInstance(CardiacAtlasLogic(), ScriptedLoadableModuleLogic)
        self.delayDisplay("Test passed")
