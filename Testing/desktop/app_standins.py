"""Thin stand-ins for Slicer's own widgets (``slicer.q*``) and for the GUI parts of ``slicer.app``.

The MRML widgets keep what a module reads and writes of them (the scene, the current node, the table);
:class:`qSlicerScriptedLoadableModule` and :class:`qSlicerScriptedLoadableModuleWidget` do what Slicer's
C++ module and module panel do with a scripted module's classes (create, ``setup()``, ``enter()``,
``exit()``, ``reload()``); :class:`App` is ``slicer.app``: version, start-up signal, module manager,
settings, a layout manager whose slice views are real slice logics, and an IO manager that saves through
the nodes' real storage nodes.
"""

from __future__ import annotations

import sys

from gui_standins import ctkDoubleSpinBox, ctkSliderWidget
from qt_core import QObject, QSettings, QVBoxLayout, QWidget, process_events

# ---------------------------------------------------------------------------------------------- slicer


class qMRMLWidget(QWidget):
    SIGNALS = ("mrmlSceneChanged",)

    def setMRMLScene(self, scene):
        self.__dict__["_scene"] = scene
        self.mrmlSceneChanged.emit(scene)

    def mrmlScene(self):
        return self.__dict__.get("_scene")


class qMRMLNodeComboBox(qMRMLWidget):
    SIGNALS = ("currentNodeChanged", "currentNodeIDChanged", "nodeAdded")
    DEFAULTS = {"nodeTypes": list, "noneEnabled": False, "addEnabled": True, "removeEnabled": True}

    def setCurrentNode(self, node):
        if node is not self.__dict__.get("_node"):
            self.__dict__["_node"] = node
            self.currentNodeChanged.emit(node)

    def currentNode(self):
        return self.__dict__.get("_node")

    def setCurrentNodeID(self, node_id):
        self.setCurrentNode(self.mrmlScene().GetNodeByID(node_id) if node_id else None)


class qMRMLTableView(qMRMLWidget):
    def setMRMLTableNode(self, node):
        self.__dict__["_table"] = node

    def mrmlTableNode(self):
        return self.__dict__.get("_table")


class qMRMLSliderWidget(ctkSliderWidget):
    pass


class qMRMLSpinBox(ctkDoubleSpinBox):
    pass


class qMRMLRangeWidget(QWidget):
    pass


class qMRMLPlotView(qMRMLWidget):
    pass


class qSlicerWidget(QWidget):
    pass


class qSlicerScriptedLoadableModule(QObject):
    """The C++ module a scripted module's class is created with (``parent``): its metadata and its widget."""

    def __init__(self, path, python_module, module_name):
        super().__init__()
        self.path, self.python_module, self.module_name = str(path), python_module, module_name
        self.title, self.categories, self.dependencies, self.contributors = "", [], [], []
        self.helpText = self.acknowledgementText = ""
        self.hidden = False
        self.icon = None
        self.instance = None
        self._widget = None

    @property
    def name(self):
        return self.module_name

    def widgetRepresentation(self):
        if self._widget is None:
            self._widget = qSlicerScriptedLoadableModuleWidget(self)
            self._widget.reload()
        return self._widget


class qSlicerScriptedLoadableModuleWidget(QWidget):
    """What Slicer's C++ module panel does with the Python widget: create it, ``setup()`` it, call ``enter()``
    and ``exit()`` when the user enters and leaves the module, and make a new one on ``reload()``."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.isEntered = False
        self.setLayout(QVBoxLayout())
        self._python = None

    def reload(self):
        import slicer

        python_module = sys.modules[self.module.module_name]
        self._python = getattr(python_module, self.module.module_name + "Widget")(self)
        self._python.setup()
        setattr(slicer.modules, self.module.module_name + "Widget", self._python)

    def self(self):
        return self._python

    def enter(self):
        self.isEntered = True
        self._python.enter()

    def exit(self):
        self.isEntered = False
        self._python.exit()


# ---------------------------------------------------------------------------------------------- slicer.app


class ModuleManager(QObject):
    SIGNALS = ("moduleAboutToBeUnloaded", "moduleLoaded")

    def __init__(self):
        super().__init__()
        self.modules = {}

    def module(self, name):
        return self.modules.get(name)


class LayoutManager(QObject):
    """The conventional layout's three slice views as real slice logics (and slice and composite nodes) on the
    scene; no view is rendered."""

    def __init__(self, scene, app_logic):
        import slicer

        super().__init__()
        self.logics = {}
        for name in ("Red", "Yellow", "Green"):
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLApplicationLogic(app_logic)
            logic.SetMRMLScene(scene)
            logic.AddSliceNode(name)
            self.logics[name] = logic

    def sliceViewNames(self):
        return list(self.logics)

    def sliceWidget(self, name):
        widget = QWidget()
        widget.mrmlSliceNode = self.logics[name].GetSliceNode
        widget.sliceLogic = lambda: self.logics[name]
        return widget

    def mrmlSliceLogics(self):
        import vtk

        collection = vtk.vtkCollection()
        for logic in self.logics.values():
            collection.AddItem(logic)
        return collection


class CoreIOManager(QObject):
    """Saves a node as Slicer's IO manager does for a node with a storage node: through that storage node."""

    def fileWriterFileType(self, node):
        return node.GetClassName()

    def saveNodes(self, file_type, properties, user_messages=None):
        import slicer

        node = slicer.mrmlScene.GetNodeByID(properties["nodeID"])
        if node.GetStorageNode() is None:
            node.AddDefaultStorageNode()
        storage = node.GetStorageNode()
        storage.SetFileName(properties["fileName"])
        return bool(storage.WriteData(node))


class CommandOptions:
    noMainWindow = True  # as in Slicer's automated tests: no main window, no menus
    disableMessageHandlers = True


class App(QObject):
    """``slicer.app``: the version, start-up signal, module manager, settings, layout and IO manager."""

    SIGNALS = ("startupCompleted", "aboutToQuit")

    def __init__(self, major, minor, scene, app_logic, cache_dir):
        super().__init__()
        self.majorVersion, self.minorVersion = major, minor
        self.cachePath = self.temporaryPath = str(cache_dir)
        self._manager = ModuleManager()
        self._layout_manager = LayoutManager(scene, app_logic)
        self._io = CoreIOManager()
        self._app_logic = app_logic

    def moduleManager(self):
        return self._manager

    def layoutManager(self):
        return self._layout_manager

    def coreIOManager(self):
        return self._io

    def applicationLogic(self):
        return self._app_logic

    def commandOptions(self):
        return CommandOptions()

    def testingEnabled(self):
        return False

    documentationBaseUrl = "https://slicer.readthedocs.io/en/latest"

    def moduleDocumentationUrl(self, name):
        return f"{self.documentationBaseUrl}/user_guide/modules/{name.lower()}.html"

    def translate(self, context, text):
        return text

    def screens(self):
        return []

    def topLevelWidgets(self):
        return []

    def settings(self):
        return QSettings()

    def userSettings(self):
        return QSettings()

    def processEvents(self):
        process_events()

    def restart(self):
        pass


SLICER_WIDGETS = [
    "qMRMLWidget", "qMRMLNodeComboBox", "qMRMLTableView", "qMRMLSliderWidget", "qMRMLSpinBox",
    "qMRMLRangeWidget", "qMRMLPlotView", "qSlicerWidget", "qSlicerScriptedLoadableModule",
    "qSlicerScriptedLoadableModuleWidget",
]  # fmt: skip
