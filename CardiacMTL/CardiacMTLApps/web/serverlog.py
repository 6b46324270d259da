"""The server's log: the app's own messages, one timed line each (:func:`log_to`), and no tracebacks of a
closed tab (:func:`quiet_closed_tabs`).

A browser tab closed (or reloaded) while the server is still answering one of its requests makes the last
write fail with ``ConnectionResetError`` ("Cannot write to closing transport"). Nothing is wrong: the tab
is gone and the app goes on serving the others. wslink, aiohttp and asyncio still log it as errors with
tracebacks, which tells the user running ``cardiac-mtl app`` that the server crashed. :func:`quiet_closed_tabs`
turns each into one information line of the app's own; every other error keeps its traceback.
"""

from __future__ import annotations

import logging
import time

# wslink logs a failed request as three error records: this line, the exception's repr, its traceback
WSLINK_LOGGER = "wslink.protocol"
WSLINK_HEADER = "Exception raised"
# "Error handling request" (aiohttp) and "Task exception was never retrieved" (a published state update or
# image, which nobody awaits), each with the exception attached
LOGGERS = (WSLINK_LOGGER, "aiohttp.server", "asyncio")
CLOSED_ERRORS = (ConnectionResetError, BrokenPipeError)  # aiohttp's ClientConnectionResetError is the first
CLOSED_NAMES = tuple(error.__name__ for error in CLOSED_ERRORS)
# the one line logged in their place
CLOSED_TAB_MESSAGE = "a browser tab closed while the server was answering it; nothing was lost"

APP_LOGGER = "CardiacMTLApps.web"  # the parent of every module's logger in the app
logger = logging.getLogger(APP_LOGGER)


def log_to(stream=None) -> logging.Handler:
    """The app's own messages (each analysis's time, an error shown in the panel, a click or brush stroke
    that crossed the wire late) on ``stream`` (standard error), one timed line each; the server's log then
    tells what happened. Idempotent: a second call replaces the handler."""
    for handler in [h for h in logger.handlers if getattr(h, "cardiacmtl", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.cardiacmtl = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def _names_closed_connection(text: str) -> bool:
    """A repr (``ClientConnectionResetError(...)``) or a traceback whose last line is a closed connection."""
    lines = text.strip().splitlines()
    last = lines[-1] if lines else ""
    return any(name + "(" in last or name + ":" in last for name in CLOSED_NAMES)


class ClosedTabFilter(logging.Filter):
    """Drops the error records of a write to a closed tab (and wslink's bare header line, whose repr and
    traceback follow it whenever the error is a real one), noting it in one information line instead (at
    most one every ``note_every_s``: one closed tab fails several writes at once)."""

    def __init__(self, note_every_s: float = 5.0):
        super().__init__()
        self.note_every_s = note_every_s
        self._noted_at: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None and record.exc_info[1] is not None:
            closed = isinstance(record.exc_info[1], CLOSED_ERRORS)
        elif record.name == WSLINK_LOGGER:
            message = record.getMessage()
            if message == WSLINK_HEADER:
                return False
            closed = _names_closed_connection(message)
        else:
            closed = False
        if closed:
            self._note()
        return not closed

    def _note(self) -> None:
        now = time.monotonic()
        if self._noted_at is None or now - self._noted_at >= self.note_every_s:
            self._noted_at = now
            logger.info(CLOSED_TAB_MESSAGE)


def quiet_closed_tabs() -> ClosedTabFilter:
    """Install the filter on wslink's, aiohttp's and asyncio's loggers; idempotent (a second call replaces
    it)."""
    new = ClosedTabFilter()
    for name in LOGGERS:
        target = logging.getLogger(name)
        for old in [f for f in target.filters if isinstance(f, ClosedTabFilter)]:
            target.removeFilter(old)
        target.addFilter(new)
    return new
