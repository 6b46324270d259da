"""What a command-line process does differently from a library caller's: the command line owns its
process, so it may leave out what no command of it uses, and end the process once its work is done."""

from __future__ import annotations

import atexit
import importlib.util
import os
import sys
import threading
from typing import NoReturn


def import_nibabel_without_pydicom() -> None:
    """Import nibabel, where this process has imported neither it nor pydicom yet, without pydicom.

    nibabel imports pydicom (about 0.14 s of every ``analyze`` on the 2-core machine) only for the NIfTI
    DICOM extension (code 2), which CardiacMTL neither reads nor writes. Without it nibabel keeps such an
    extension's bytes as it does where pydicom is not installed, and reads and writes images as always.
    pydicom itself is imported as usual where a DICOM file needs it. Call it before any thread starts: for
    the moment of nibabel's import, ``import pydicom`` fails in this process.
    """
    if "nibabel" in sys.modules or "pydicom" in sys.modules or importlib.util.find_spec("nibabel") is None:
        return
    sys.modules["pydicom"] = None  # nibabel's optional_package then finds it missing
    try:
        import nibabel  # noqa: F401
    finally:
        if sys.modules.get("pydicom", False) is None:
            del sys.modules["pydicom"]


def end_process(code: int) -> NoReturn:
    """End a command's process with status ``code`` once its work is done, without Python's teardown.

    After the last file is written and closed, the interpreter's own shutdown still frees every module and
    object one by one: about 0.15 s of every ``analyze`` on the 2-core machine (some 900 modules: numpy,
    scipy, matplotlib, OpenVINO), 6 % of the biv-me study's time, before the prompt returns. What that
    shutdown runs for the program runs here, in its order: the ``atexit`` handlers (logging's flush,
    matplotlib's, multiprocessing's, any a library registered), then the standard streams are flushed, and
    the process ends (``os._exit``). Where a thread that is not a daemon still runs, or this Python has no
    ``atexit._run_exitfuncs``, the process exits as usual (``sys.exit``), which waits for the thread.
    """
    main_thread = threading.main_thread()
    running = [t for t in threading.enumerate() if t is not main_thread and not t.daemon and t.is_alive()]
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if running or run_exit_handlers is None:
        sys.exit(code)
    run_exit_handlers()
    # the standard streams, and their originals where a caller replaced them
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)
