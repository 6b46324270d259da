"""Run the browser app (``cardiac-mtl app``) in a child process on a free local port: for the end-to-end
browser tests and ``bench/app_latency.py``, which drive it with Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from CardiacMTLLib.errors import CardiacError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(
    *app_args: str,
    log_path: str | Path | None = None,
    timeout_s: float = 600,
    executable: str | Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Start ``cardiac-mtl app --port P *app_args`` and yield ``http://127.0.0.1:P/`` once it answers.

    ``executable`` is the installed ``cardiac-mtl`` command to run (as a user types it); without one the
    CLI runs in this Python. The server's output goes to ``log_path`` (discarded without one). The app is
    stopped on exit. ``env`` adds to its environment (``PYTHONPATH`` of another checkout). A server that exits early or does not answer within ``timeout_s`` raises
    :class:`CardiacError` naming the log.
    """
    port = free_port()
    cli = (
        [str(executable)]
        if executable is not None
        else [
            sys.executable,
            "-c",
            "import sys; from CardiacMTLApps.cli.mtl import main; sys.exit(main(sys.argv[1:]))",
        ]
    )
    command = [*cli, *("app", "--port", str(port)), *app_args]
    log = open(log_path, "w") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1", **(env or {}))
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    where = f"; see {log_path}" if log_path is not None else ""
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if server.poll() is not None:
                raise CardiacError(f"the app exited with status {server.returncode}{where}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise CardiacError(
                        f"the app did not answer on {url} within {timeout_s:.0f} s{where}"
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        if log is not subprocess.DEVNULL:
            log.close()
