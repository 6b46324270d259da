"""Thin stand-ins for what needs a GUI when Slicer's own Python layer runs without one.

The ``qt`` and ``ctk`` modules (PythonQt's widgets), the ``slicer.q*`` widget classes and the pieces of
``slicer.app`` a scripted module touches. A stand-in widget keeps what PythonQt exposes of a Qt object:
properties as attributes (a change of a notifying property emits its signal, as in Qt), dynamic properties
(``property``/``setProperty``), parent and children, layouts, and signals (``connect`` by signature or by
attribute, ``emit``). Nothing is drawn. :class:`QUiLoader` builds the widget tree of a Qt Designer ``.ui``
file, its properties and its signal/slot connections, so a module's ``self.ui.<name>`` exists exactly when
the ``.ui`` file declares it. The MRML scene, the module logics and Slicer's Python code they serve are real.
"""

from __future__ import annotations

import sys
import time
import types
import xml.etree.ElementTree as ET
from pathlib import Path

# what the stand-ins accepted without a definition of their own: listed in the check's report
ACCEPTED: set[str] = set()
TIMERS: list = []
ANSWERS: dict[str, list] = {"getOpenFileName": [], "getExistingDirectory": []}


class Signal:
    def __init__(self):
        self._slots = []

    def connect(self, slot, nargs=None):
        self._slots.append((slot, nargs))
        return True

    def disconnect(self, slot=None):
        self._slots = [] if slot is None else [(f, n) for f, n in self._slots if f != slot]
        return True

    def emit(self, *args):
        for slot, nargs in list(self._slots):
            _call(slot, args if nargs is None else args[:nargs])

    @property
    def connected(self) -> int:
        return len(self._slots)


def _call(slot, args):
    """Call ``slot`` with as many of ``args`` as it takes (PythonQt drops the extra arguments of a signal)."""
    for n in range(len(args), -1, -1):
        try:
            return slot(*args[:n])
        except TypeError as e:
            if n == 0 or "positional argument" not in str(e):
                raise


class QObject:
    SIGNALS: tuple[str, ...] = ("destroyed", "objectNameChanged")
    DEFAULTS: dict = {}
    NOTIFY: dict[str, str] = {}  # property -> the signal a change of it emits

    def __init__(self, *args, **kwargs):
        d = self.__dict__
        d.update(_children=[], _parent=None, _dynamic={}, _signals={}, _layout=None, name="")
        for cls in reversed(type(self).__mro__):
            for key, value in getattr(cls, "DEFAULTS", {}).items():
                d[key] = value() if callable(value) else value
        parent = kwargs.get("parent", next((a for a in args if isinstance(a, QObject)), None))
        if parent is not None:
            self.setParent(parent)

    @classmethod
    def _all_signals(cls) -> set[str]:
        return {s for c in cls.__mro__ for s in getattr(c, "SIGNALS", ())}

    def __setattr__(self, name, value):
        name = "name" if name == "objectName" else name
        signal = next((c.NOTIFY[name] for c in type(self).__mro__ if name in getattr(c, "NOTIFY", {})), None)
        old = self.__dict__.get(name, object())
        self.__dict__[name] = value
        if signal is not None and not _same(old, value):
            getattr(self, signal).emit(value)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in type(self)._all_signals():
            return self.__dict__["_signals"].setdefault(name, Signal())
        if len(name) > 3 and name.startswith("set") and name[3].isupper():
            ACCEPTED.add(f"{type(self).__name__}.{name}")
            prop = name[3].lower() + name[4:]
            return lambda value=None, *rest: setattr(self, prop, value)
        raise AttributeError(f"{type(self).__name__} (stand-in) has no attribute {name!r}")

    objectName = property(lambda self: self.name, lambda self, v: self.__dict__.__setitem__("name", v))

    def setObjectName(self, name):
        self.name = name

    def setParent(self, parent):
        if self._parent is not None and self in self._parent._children:
            self._parent._children.remove(self)
        self.__dict__["_parent"] = parent or None
        if parent:
            parent._children.append(self)

    def parent(self):
        return self._parent

    def children(self):
        return list(self._children)

    def property(self, name):
        return self._dynamic.get(name, self.__dict__.get(name))

    def setProperty(self, name, value):
        self._dynamic[name] = value
        return True

    def connect(self, signature, slot):
        """``connect("clicked(bool)", slot)``: the slot gets the arguments the signature names."""
        arguments = signature.split("(", 1)[1].rstrip(")").strip() if "(" in signature else None
        nargs = None if arguments is None else len(arguments.split(",")) if arguments else 0
        return getattr(self, signature.split("(")[0]).connect(slot, nargs)

    def disconnect(self, signature, slot=None):
        return getattr(self, signature.split("(")[0]).disconnect(slot)

    def findChildren(self, cls=None):
        found = []
        for child in self._children:
            if cls is None or isinstance(child, cls):
                found.append(child)
            found += child.findChildren(cls)
        return found

    def className(self):
        return type(self).__name__

    def inherits(self, name):
        return any(c.__name__ == name for c in type(self).__mro__)

    def deleteLater(self):
        self.setParent(None)

    def installEventFilter(self, event_filter):
        pass

    def blockSignals(self, block):
        return False


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a numpy array or a VTK object compared
        return a is b


class QWidget(QObject):
    DEFAULTS = {"visible": True, "enabled": True, "toolTip": "", "text": "", "title": ""}
    SIGNALS = ("customContextMenuRequested",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if args and isinstance(args[0], str):  # QLabel("text"), QPushButton("text", parent)
            self.__dict__["text"] = args[0]

    def isWidgetType(self):
        return True

    def layout(self):
        return self._layout

    def setLayout(self, layout):
        self.__dict__["_layout"] = layout
        layout.setParent(self)
        for item in layout._items:
            if isinstance(item, QWidget):
                item.setParent(self)

    def show(self):
        self.visible = True

    def hide(self):
        self.visible = False

    def isVisible(self):
        return self.visible

    def setVisible(self, visible):
        self.visible = bool(visible)


class QLayoutItem:
    def __init__(self, item):
        self.item = item

    def widget(self):
        return self.item if isinstance(self.item, QWidget) else None

    def layout(self):
        return self.item if isinstance(self.item, QLayout) else None


class QLayout(QObject):
    def __init__(self, *args, **kwargs):
        widget = next((a for a in args if isinstance(a, QWidget)), None)
        super().__init__()
        self.__dict__["_items"] = []
        if widget is not None:
            widget.setLayout(self)

    def parentWidget(self):
        parent = self._parent
        while parent is not None and not isinstance(parent, QWidget):
            parent = parent._parent
        return parent

    def _add(self, item):
        self._items.append(item)
        if isinstance(item, QWidget) and self.parentWidget() is not None:
            item.setParent(self.parentWidget())
        elif isinstance(item, QLayout):
            item.setParent(self)

    def addWidget(self, widget, *position):
        self._add(widget)

    def addLayout(self, layout, *position):
        self._add(layout)

    def addItem(self, item):
        self._items.append(item)

    def addStretch(self, *stretch):
        self._items.append("stretch")

    def count(self):
        return len(self._items)

    def itemAt(self, index):
        return QLayoutItem(self._items[index]) if 0 <= index < len(self._items) else None

    def removeItem(self, item):
        if item.item in self._items:
            self._items.remove(item.item)

    def removeWidget(self, widget):
        if widget in self._items:
            self._items.remove(widget)

    def setContentsMargins(self, *margins):
        pass


class QVBoxLayout(QLayout):
    pass


class QHBoxLayout(QLayout):
    pass


class QGridLayout(QLayout):
    pass


class QFormLayout(QLayout):
    def addRow(self, label, field=None):
        if field is None:
            return self._add(label)
        self._add(QLabel(label) if isinstance(label, str) else label)
        self._add(field)

    def setWidget(self, row, role, widget):
        self._add(widget)

    def removeRow(self, widget):
        if widget not in self._items:
            return
        index = self._items.index(widget)
        remove = [widget] + (
            [self._items[index - 1]] if index and isinstance(self._items[index - 1], QLabel) else []
        )
        for item in remove:
            self._items.remove(item)
            if isinstance(item, QObject):
                item.setParent(None)

    def rowCount(self):
        return sum(1 for i in self._items if not isinstance(i, QLabel))


class QLabel(QWidget):
    DEFAULTS = {"wordWrap": False}


class QAbstractButton(QWidget):
    SIGNALS = ("clicked", "toggled", "pressed", "released")
    DEFAULTS = {"checkable": False, "checked": False}
    NOTIFY = {"checked": "toggled"}

    def click(self):
        if self.enabled:
            if self.checkable:
                self.checked = not self.checked
            self.clicked.emit(self.checked)


class QPushButton(QAbstractButton):
    pass


class QToolButton(QAbstractButton):
    pass


class QCheckBox(QAbstractButton):
    pass


class QComboBox(QWidget):
    SIGNALS = ("currentIndexChanged", "currentTextChanged", "activated")
    DEFAULTS = {"currentIndex": -1, "_entries": list}
    NOTIFY = {"currentIndex": "currentIndexChanged"}

    def addItem(self, text, *data):
        self._entries.append(str(text))
        if self.currentIndex < 0:
            self.currentIndex = 0

    def addItems(self, texts):
        for text in texts:
            self.addItem(text)

    def clear(self):
        self._entries.clear()
        self.__dict__["currentIndex"] = -1

    def count(self):
        return len(self._entries)

    def itemText(self, index):
        return self._entries[index]

    @property
    def currentText(self):
        return self._entries[self.currentIndex] if 0 <= self.currentIndex < len(self._entries) else ""


class QAbstractSpinBox(QWidget):
    SIGNALS = ("valueChanged", "editingFinished")
    DEFAULTS = {"value": 0, "minimum": 0, "maximum": 99, "singleStep": 1, "decimals": 2, "suffix": ""}
    NOTIFY = {"value": "valueChanged"}

    def setRange(self, minimum, maximum):
        self.minimum, self.maximum = minimum, maximum


class QSpinBox(QAbstractSpinBox):
    pass


class QDoubleSpinBox(QAbstractSpinBox):
    DEFAULTS = {"value": 0.0, "maximum": 99.99}


class QSlider(QAbstractSpinBox):
    pass


class QProgressBar(QWidget):
    DEFAULTS = {"value": 0, "minimum": 0, "maximum": 100}


class QLineEdit(QWidget):
    SIGNALS = ("textChanged", "editingFinished")
    NOTIFY = {"text": "textChanged"}


class QTextEdit(QWidget):
    SIGNALS = ("textChanged",)
    DEFAULTS = {"readOnly": False, "plainText": ""}

    def toPlainText(self):
        return self.plainText


class QMenu(QWidget):
    def addAction(self, action):
        self._add_child(action)

    def _add_child(self, child):
        child.setParent(self)


class QAction(QObject):
    SIGNALS = ("triggered", "toggled")


class QDialog(QWidget):
    SIGNALS = ("finished", "accepted", "rejected")

    def exec_(self):
        return 1

    exec = exec_

    def close(self):
        self.visible = False
        return True


class QTimer(QObject):
    """A timer the check's event loop fires (:func:`process_events`); ``singleShot`` runs on the next pass."""

    SIGNALS = ("timeout",)
    DEFAULTS = {"interval": 0, "_active": False}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        TIMERS.append(self)

    def start(self, msec=None):
        self.__dict__["_active"] = True
        if msec is not None:
            self.interval = msec

    def stop(self):
        self.__dict__["_active"] = False

    def isActive(self):
        return self._active

    @staticmethod
    def singleShot(msec, slot):
        timer = QTimer()
        timer.__dict__["_single"] = slot
        timer.start(msec)


def process_events(seconds: float = 0.0) -> None:
    """One pass of the event loop: every active timer fires once (after ``seconds`` of sleep)."""
    if seconds:
        time.sleep(seconds)
    for timer in list(TIMERS):
        if timer.isActive():
            single = timer.__dict__.get("_single")
            if single is not None:
                timer.stop()
                TIMERS.remove(timer)
                single()
            else:
                timer.timeout.emit()


class QFile(QObject):
    ReadOnly = 1

    def __init__(self, path):
        super().__init__()
        self.path = str(path)

    def exists(self):
        return Path(self.path).is_file()

    def open(self, mode):
        return self.exists()

    def close(self):
        pass


class QSettings(QObject):
    VALUES: dict = {}

    def value(self, key, default=None):
        return self.VALUES.get(key, default)

    def setValue(self, key, value):
        self.VALUES[key] = value

    def contains(self, key):
        return key in self.VALUES


class QIcon:
    def __init__(self, path=""):
        self.path = str(path)


class QSize:
    def __init__(self, width=0, height=0):
        self._size = (width, height)

    def width(self):
        return self._size[0]

    def height(self):
        return self._size[1]


class QColor:
    def __init__(self, *rgb):
        self.rgb = rgb


class QRect:
    def __init__(self, x=0, y=0, width=0, height=0):
        self._rect = (x, y, width, height)

    def width(self):
        return self._rect[2]

    def height(self):
        return self._rect[3]


class QDesktopWidget(QWidget):  # Qt 5 (Slicer 5.10's Sample Data sizes its buttons from it)
    DEFAULTS = {"primaryScreen": 0}

    def availableGeometry(self, screen=None):
        return QRect(0, 0, 1920, 1080)


class QSizePolicy:
    Fixed, Minimum, Maximum, Preferred, Expanding = range(5)

    def __init__(self, *policies):
        self.policies = list(policies)

    def setHorizontalPolicy(self, policy):
        self.policies[:1] = [policy]


class _Enums(type):
    def __getattr__(cls, name):
        return name


class Qt(metaclass=_Enums):
    pass


class QFileDialog(QObject):
    @staticmethod
    def getOpenFileName(*args):
        return ANSWERS["getOpenFileName"].pop(0) if ANSWERS["getOpenFileName"] else ""

    @staticmethod
    def getExistingDirectory(*args):
        return ANSWERS["getExistingDirectory"].pop(0) if ANSWERS["getExistingDirectory"] else ""


class QUiLoader(QObject):
    """Builds the widget tree of a ``.ui`` file from the stand-in classes (those of ``qt``, ``ctk`` and
    ``slicer`` by name): standard properties as attributes, ``stdset="0"`` ones as dynamic properties, layouts
    with their items, and the file's signal/slot connections."""

    def load(self, qfile):
        root = ET.parse(qfile.path).getroot()
        named = {}
        top = self._build_widget(root.find("widget"), None, named)
        for connection in root.iter("connection"):
            sender, receiver = named[connection.findtext("sender")], named[connection.findtext("receiver")]
            slot = getattr(receiver, connection.findtext("slot").split("(")[0])
            sender.connect(connection.findtext("signal"), slot)
        return top

    def _build_widget(self, element, parent_layout, named):
        widget = widget_class(element.get("class"))()
        widget.name = element.get("name", "")
        named[widget.name] = widget
        if parent_layout is not None:
            parent_layout.addWidget(widget)
        self._properties(widget, element)
        for child in element:
            if child.tag == "layout":
                widget.setLayout(self._build_layout(child, named))
            elif child.tag == "widget":
                self._build_widget(child, None, named).setParent(widget)
        return widget

    def _build_layout(self, element, named):
        layout = widget_class(element.get("class"))()
        layout.name = element.get("name", "")
        named[layout.name] = layout
        for item in element.findall("item"):
            for child in item:
                if child.tag == "widget":
                    self._build_widget(child, layout, named)
                elif child.tag == "layout":
                    layout.addLayout(self._build_layout(child, named))
        return layout

    @staticmethod
    def _properties(widget, element):
        for prop in element.findall("property"):
            value = _property_value(prop)
            if prop.get("stdset") == "0":
                widget.setProperty(prop.get("name"), value)
            else:
                widget.__dict__[prop.get("name")] = value


def _property_value(prop):
    value = prop[0] if len(prop) else None
    if value is None:
        return None
    if value.tag == "stringlist":
        return [s.text or "" for s in value.findall("string")]
    text = value.text or ""
    if value.tag == "bool":
        return text == "true"
    if value.tag in ("number", "enum") and text.lstrip("-").isdigit():
        return int(text)
    if value.tag == "double":
        return float(text)
    return text


# ---------------------------------------------------------------------------------------------- ctk


class ctkCollapsibleButton(QAbstractButton):
    DEFAULTS = {"collapsed": False}
    SIGNALS = ("contentsCollapsed",)


class ctkCollapsibleGroupBox(QWidget):
    DEFAULTS = {"collapsed": False}


class ctkDirectoryButton(QWidget):
    SIGNALS = ("directoryChanged", "directorySelected")
    DEFAULTS = {"directory": ""}
    NOTIFY = {"directory": "directoryChanged"}


class ctkPathLineEdit(QWidget):
    SIGNALS = ("currentPathChanged",)
    DEFAULTS = {"currentPath": ""}
    NOTIFY = {"currentPath": "currentPathChanged"}


class ctkSliderWidget(QAbstractSpinBox):
    DEFAULTS = {"value": 0.0, "minimum": 0.0, "maximum": 99.0, "singleStep": 1.0}


class ctkDoubleSpinBox(QDoubleSpinBox):
    pass


class ctkComboBox(QComboBox):
    pass


class ctkCheckBox(QCheckBox):
    pass


class ctkFlowLayout(QLayout):
    DEFAULTS = {"preferredExpandingDirections": None}


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


# ---------------------------------------------------------------------------------------------- modules


def widget_class(name: str):
    """The stand-in class of a Qt, CTK or Slicer widget or layout, by its C++ class name."""
    for module in (sys.modules.get("qt"), sys.modules.get("ctk"), sys.modules[__name__]):
        if module is not None and hasattr(module, name):
            return getattr(module, name)
    raise KeyError(f"no stand-in for the widget class {name}")


def _module(name: str, prefix: str, names: list[str]) -> types.ModuleType:
    module = types.ModuleType(name, f"Stand-ins for PythonQt's {name} module (no GUI)")
    this = sys.modules[__name__]
    for attr in names:
        setattr(module, attr, getattr(this, attr))

    def fallback(attr):  # a class only named (in an isinstance or a type check): a plain widget
        if attr.startswith(prefix):
            ACCEPTED.add(f"{name}.{attr}")
            cls = type(attr, (QWidget,), {})
            setattr(module, attr, cls)
            return cls
        raise AttributeError(f"module {name!r} (stand-in) has no attribute {attr!r}")

    module.__getattr__ = fallback
    return module


QT_NAMES = [
    "QObject", "QWidget", "QLayout", "QVBoxLayout", "QHBoxLayout", "QGridLayout", "QFormLayout", "QLabel",
    "QAbstractButton", "QPushButton", "QToolButton", "QCheckBox", "QComboBox", "QSpinBox", "QDoubleSpinBox",
    "QSlider", "QProgressBar", "QLineEdit", "QTextEdit", "QMenu", "QAction", "QDialog", "QTimer", "QFile", "QSettings",
    "QIcon", "QSize", "QColor", "QRect", "QDesktopWidget", "QSizePolicy", "Qt", "QFileDialog", "QUiLoader",
]  # fmt: skip
CTK_NAMES = [
    "ctkCollapsibleButton", "ctkCollapsibleGroupBox", "ctkDirectoryButton", "ctkPathLineEdit",
    "ctkSliderWidget", "ctkDoubleSpinBox", "ctkComboBox", "ctkCheckBox", "ctkFlowLayout",
]  # fmt: skip
SLICER_WIDGETS = [
    "qMRMLWidget", "qMRMLNodeComboBox", "qMRMLTableView", "qMRMLSliderWidget", "qMRMLSpinBox",
    "qMRMLRangeWidget", "qMRMLPlotView", "qSlicerWidget", "qSlicerScriptedLoadableModule",
    "qSlicerScriptedLoadableModuleWidget",
]  # fmt: skip


def install_qt_and_ctk() -> None:
    """``import qt`` and ``import ctk`` give the stand-ins (before Slicer's Python layer is imported)."""
    sys.modules["qt"] = _module("qt", "Q", QT_NAMES)
    sys.modules["ctk"] = _module("ctk", "ctk", CTK_NAMES)
