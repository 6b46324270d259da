"""matplotlib, imported on a thread while the analysis runs, for the report drawn at its end.

matplotlib's import (about 0.2-0.3 s on a 2-core laptop CPU, all of it Python) is the largest part of
the first ``report.png`` of a process. :func:`~CardiacMTLLib.actions.analyze_path` starts
:func:`preload_drawing` once the input is read, where the network runs on OpenVINO: the import then runs
while the network, outside Python's lock, segments the frames, and :func:`wait_for_drawing` waits for it
before anything draws, so that no two threads import the same module. A process that has imported
matplotlib already (a cohort, Slicer, the web app) starts nothing.
"""

from __future__ import annotations

import sys
import threading

_lock = threading.Lock()
_thread: threading.Thread | None = None


def _import_drawing() -> None:
    """Import what :func:`~CardiacMTLLib.report.figures.write_report` and the bull's-eyes draw with."""
    try:
        import contourpy  # noqa: F401
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.collections  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.lines  # noqa: F401
        import matplotlib.patches  # noqa: F401
        import matplotlib.path  # noqa: F401
    except Exception:  # noqa: BLE001 - the drawing's own import raises it where it matters
        pass


def preload_drawing() -> threading.Thread | None:
    """Start importing matplotlib on a thread and return it; ``None`` (nothing started) where it is
    imported or being imported already."""
    global _thread
    with _lock:
        if _thread is not None or "matplotlib.figure" in sys.modules:
            return None
        _thread = threading.Thread(target=_import_drawing, name="cardiac-mtl-drawing-import")
        _thread.start()
        return _thread


def wait_for_drawing() -> None:
    """Wait until a :func:`preload_drawing` import has finished (at once where none was started)."""
    thread = _thread
    if thread is not None:
        thread.join()
