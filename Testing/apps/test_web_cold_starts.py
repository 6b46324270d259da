"""Ten cold starts of the browser app in a row, as a user starts it (the installed ``cardiac-mtl app``
command, a fresh process each time): each serves the page, loads the network without an error and keeps
running. The loader thread once crashed two starts in three (``KeyError: 'scipy'``). And tabs closed while
the server answers them leave no traceback in its log: one start in ten once did, on a loaded machine.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip

from CardiacMTLApps.web.serverlog import CLOSED_TAB_MESSAGE

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "Testing" / "artifacts" / "webapp" / "cold_starts"
ACDC = REPO_ROOT.parent / "shared" / "data" / "acdc"
STARTS = 10
CLOSED_TABS = 8
VIEWPORT = {"width": 1500, "height": 950}
# the panel shows the device the network loaded on, or why it could not load it
DEVICE_SHOWN = (
    "() => { const e = document.getElementById('device-text');"
    " return e && (e.textContent.includes('cpu') || e.textContent.includes('could not')); }"
)

playwright_api = playwright_or_skip()

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _command() -> Path:
    installed = Path(sys.executable).parent / "cardiac-mtl"
    found = installed if installed.exists() else shutil.which("cardiac-mtl")
    if found is None:
        pytest.skip("the cardiac-mtl command is not installed (pip install -e .)")
    return Path(found)


def _first_traceback(server_log: str, lines: int = 12) -> str:
    """The first traceback in the server's log and the lines after it (its cause, in a failure's message),
    or ""."""
    at = server_log.find("Traceback")
    return "" if at < 0 else "\n".join(server_log[at:].splitlines()[:lines])


def test_ten_cold_starts_in_a_row_load_the_page_and_the_network_without_a_crash():
    from CardiacMTLApps.web.process import running_app

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = ["--data", str(ACDC)] if (ACDC / "patient001" / "Info.cfg").exists() else []
    outcomes = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        for start in range(1, STARTS + 1):
            log = ARTIFACTS / f"server_{start:02d}.log"
            with running_app("--device", "cpu", *data, log_path=log, executable=_command()) as url:
                page = browser.new_page(viewport=VIEWPORT)
                errors = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(url)
                page.wait_for_function(DEVICE_SHOWN, timeout=300_000)
                device = page.locator("#device-text").inner_text()
                page.screenshot(path=str(ARTIFACTS / f"start_{start:02d}.png"))
                page.close()
            outcomes.append(
                {
                    "start": start,
                    "device": device,
                    "page_errors": errors,
                    "traceback": _first_traceback(log.read_text()),
                }
            )
        browser.close()
    (ARTIFACTS / "outcomes.json").write_text(json.dumps(outcomes, indent=1))
    failed = [o for o in outcomes if "could not" in o["device"] or o["page_errors"] or o["traceback"]]
    assert not failed, f"{len(failed)} of {STARTS} starts failed: {failed}"
    assert len(outcomes) == STARTS


def test_tabs_closed_while_the_server_answers_them_leave_no_traceback_and_the_app_serves_on():
    """Load clicked and the tab closed at once: the answer to the click, and the state updates and images
    the load publishes, may be written to a closed connection (each one was a traceback in the log).

    Whether a write lands in the moment between the tab closing and the server noticing depends on the
    machine's timing: here the first to the fourth tab did, on CI's machine none of three once did. So
    tabs are closed until one write has failed (the log's information line), at most ``CLOSED_TABS``;
    the test then asks for no traceback and a working app, not for the information line (that the filter
    turns each such record into it is tested without a browser in test_web_serverlog.py). Without the
    filter all eight tabs are closed and the log has tracebacks: checked."""
    from CardiacMTLApps.web.process import running_app

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "server_closed_tabs.log"
    closed = 0
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        with running_app("--device", "cpu", log_path=log, executable=_command()) as url:
            while closed < CLOSED_TABS and CLOSED_TAB_MESSAGE not in log.read_text():
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url)
                page.wait_for_function(DEVICE_SHOWN, timeout=300_000)
                page.locator("#load-case").click()
                page.close()
                closed += 1
                time.sleep(0.5)  # the server's log line, if a write failed, is written by now
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url)
            page.wait_for_function(DEVICE_SHOWN, timeout=60_000)
            page.locator("#load-case").click()
            page.wait_for_function(
                "() => (document.getElementById('status-text') || {}).textContent?.startsWith('Loaded')",
                timeout=60_000,
            )
            page.close()
        browser.close()
    server_log = log.read_text()
    (ARTIFACTS / "closed_tabs.json").write_text(
        json.dumps({"tabs_closed": closed, "a_write_failed": CLOSED_TAB_MESSAGE in server_log})
    )
    traceback = _first_traceback(server_log)
    assert not traceback, f"the server's log has a traceback after {closed} closed tab(s):\n{traceback}"
