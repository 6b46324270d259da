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


class CardiacCancelled(CardiacError):
    """Long work was stopped on request (a GUI's Cancel, or its result would no longer be shown)."""


def run_reporting_errors(prog: str, action: Callable[[], int | None]) -> int:
    """Run a command-line action: a :class:`CardiacError` becomes ``prog: error: ...`` on stderr and exit
    status 2 (a bug still shows its traceback); otherwise the action's status, 0 when it returns None."""
    try:
        status = action()
    except CardiacError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return 0 if status is None else int(status)
