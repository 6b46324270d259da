"""Thin stand-ins for what needs a GUI when Slicer's own Python layer runs without one.

The ``qt`` and ``ctk`` modules (PythonQt's widgets; the core classes are in ``qt_core.py``, Slicer's own
widgets and ``slicer.app`` in ``app_standins.py``). A stand-in widget keeps what PythonQt exposes of a Qt object:
properties as attributes (a change of a notifying property emits its signal, as in Qt), dynamic properties
(``property``/``setProperty``), parent and children, layouts, and signals (``connect`` by signature or by
attribute, ``emit``). Nothing is drawn. :class:`QUiLoader` builds the widget tree of a Qt Designer ``.ui``
file, its properties and its signal/slot connections, so a module's ``self.ui.<name>`` exists exactly when
the ``.ui`` file declares it. The MRML scene, the module logics and Slicer's Python code they serve are real.
"""

from __future__ import annotations

import sys
import types
import xml.etree.ElementTree as ET

from qt_core import (  # noqa: F401  (re-exported: the check's steps use them from here)
    ACCEPTED,
    ANSWERS,
    TIMERS,
    QColor,
    QDesktopWidget,
    QFile,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QIcon,
    QLabel,
    QLayout,
    QLayoutItem,
    QObject,
    QRect,
    QSettings,
    QSize,
    QSizePolicy,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
    process_events,
)


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


# ---------------------------------------------------------------------------------------------- modules


def widget_class(name: str):
    """The stand-in class of a Qt, CTK or Slicer widget or layout, by its C++ class name."""
    for module in (sys.modules.get("qt"), sys.modules.get("ctk"), sys.modules.get("app_standins")):
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


def install_qt_and_ctk() -> None:
    """``import qt`` and ``import ctk`` give the stand-ins (before Slicer's Python layer is imported)."""
    sys.modules["qt"] = _module("qt", "Q", QT_NAMES)
    sys.modules["ctk"] = _module("ctk", "ctk", CTK_NAMES)
