"""Exception types, one per kind of user mistake, so callers can tell bad input from a bug."""

from __future__ import annotations

import sys
from collections.abc import Callable


class CardiacError(Exception):
    """Base class of every error this library raises on purpose."""


class CardiacInputError(CardiacError, ValueError):
    """An input file or folder is missing, unreadable, or not what the action needs."""


class CardiacModelError(CardiacError, RuntimeError):
    """A model folder is missing, corrupt, or does not match what inference expects."""


class CardiacOutputError(CardiacError, OSError):
    """An output location cannot be written without risking files the project did not write, or at all."""


class CardiacCancelled(CardiacError):
    """Long work was stopped on request (a GUI's Cancel, or its result would no longer be shown)."""


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_reporting_errors(prog: str, action: Callable[[], int | None], debug: bool = False) -> int:
    """Run a command-line action and turn what the user can act on into one line on stderr.

    A :class:`CardiacError` becomes ``prog: error: ...`` and exit status 2; an operating-system error
    (a folder not writable, a disk full) names its file, status 2; Ctrl-C or SIGTERM stop the run (staged
    output is removed on the way out) with status 130. ``debug`` shows the traceback as well. Any other
    exception is a bug and keeps its traceback.
    """
    import signal
    import traceback

    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        status = action()
    except CardiacError as e:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if debug:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted; no partial results were left behind", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0 if status is None else int(status)
