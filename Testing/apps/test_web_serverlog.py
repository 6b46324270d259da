"""The server's log keeps every error's traceback except a write to a tab that had closed: that one is a
single information line (``CardiacMTLApps.web.serverlog``). The records are the ones wslink, aiohttp and
asyncio write for it (asyncio's from a real task of a real event loop)."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import traceback

import pytest

aiohttp_exceptions = pytest.importorskip("aiohttp.client_exceptions", reason="aiohttp is not installed")

from CardiacMTLApps.web.serverlog import LOGGERS, quiet_closed_tabs  # noqa: E402

CLOSED = aiohttp_exceptions.ClientConnectionResetError("Cannot write to closing transport")


@pytest.fixture
def server_log():
    """Everything the three libraries' loggers and the app's logger write, as one text; the filters and
    handlers they had are put back afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    names = (*LOGGERS, "CardiacMTLApps.web")
    saved = {n: (list(logging.getLogger(n).filters), logging.getLogger(n).level) for n in names}
    for n in names:
        logging.getLogger(n).addHandler(handler)
        logging.getLogger(n).setLevel(logging.INFO)
    yield stream
    for n in names:
        target = logging.getLogger(n)
        target.removeHandler(handler)
        target.filters[:], target.level = saved[n]


def _raised(exc: BaseException, during: BaseException | None = None) -> BaseException:
    """``exc`` with a traceback (and raised while handling ``during``), as a library logs it."""
    try:
        if during is None:
            raise exc
        try:
            raise during
        except BaseException:
            raise exc  # noqa: B904
    except BaseException as caught:
        return caught


def _wslink_logs(exc: BaseException) -> None:
    """wslink's three error records of a request that raised ``exc``: a header, the repr, the traceback."""
    wslink = logging.getLogger("wslink.protocol")
    wslink.error("Exception raised")
    wslink.error(repr(exc))
    wslink.error("".join(traceback.format_exception(exc)))


def _log_a_closed_tab() -> None:
    """What a tab closed during a request's answer and a published update leaves in the log."""
    first = _raised(CLOSED)
    _wslink_logs(first)
    logging.getLogger("aiohttp.server").exception(
        "Error handling request from %s", "127.0.0.1", exc_info=_raised(CLOSED, during=first)
    )

    async def publish():
        raise CLOSED

    async def main():
        task = asyncio.ensure_future(publish())
        await asyncio.sleep(0.01)
        del task  # never awaited: asyncio logs "Task exception was never retrieved" when it is collected

    asyncio.run(main())
    gc.collect()


def test_a_closed_tab_is_one_information_line_without_a_traceback(server_log):
    _log_a_closed_tab()
    unfiltered = server_log.getvalue()
    assert unfiltered.count("Traceback") >= 3 and "Task exception was never retrieved" in unfiltered

    server_log.seek(0), server_log.truncate()
    quiet_closed_tabs()
    quiet_closed_tabs()  # idempotent: one filter per logger
    assert all(len(logging.getLogger(n).filters) == 1 for n in LOGGERS)
    _log_a_closed_tab()
    text = server_log.getvalue()
    assert "Traceback" not in text and "ConnectionResetError" not in text, text
    assert text.splitlines() == [
        "INFO a browser tab closed while the server was answering it; nothing was lost"
    ]


def test_every_other_error_keeps_its_traceback(server_log):
    quiet_closed_tabs()
    _wslink_logs(_raised(KeyError("scipy")))  # its header alone says nothing: the repr and traceback do
    logging.getLogger("aiohttp.server").exception(
        "Error handling request", exc_info=_raised(ValueError("bad"))
    )
    server = logging.getLogger("aiohttp.server")
    server.exception("Error handling request", exc_info=_raised(KeyError("during"), during=CLOSED))
    text = server_log.getvalue()
    assert "KeyError('scipy')" in text and "ValueError: bad" in text and "KeyError: 'during'" in text
    assert (
        text.count("Traceback") == 4
    )  # KeyError(scipy)'s, ValueError's, KeyError(during)'s and its context's
    assert "tab closed" not in text and "Exception raised" not in text
