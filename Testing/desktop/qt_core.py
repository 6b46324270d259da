"""The core of the Qt stand-ins: signals, ``QObject`` (properties, dynamic properties, children, signals
as PythonQt exposes them), ``QWidget``, the layouts, the timer and its event loop (:func:`process_events`),
files, settings, small value types and the file dialog (answers queued in :data:`ANSWERS`). The widgets
and the ``qt``/``ctk`` modules built from them are in ``gui_standins.py``.
"""

from __future__ import annotations

import time
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


class QLabel(QWidget):
    DEFAULTS = {"wordWrap": False}


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
