"""Long work off the user's thread: one background task with progress, cooperative cancellation and an
outcome, shared by the Slicer panel (polled by a Qt timer) and the browser app (awaited with asyncio).

The work is a callable taking ``progress(done, total)``; the pipeline calls it after every frame
(``pipeline.analyze`` passes it to ``analysis.segment``). Cancelling sets a flag, and the next call of
``progress`` raises :class:`~CardiacMTLLib.errors.CardiacCancelled` inside the work, so a cancelled
analysis stops after the current frame and hands back no result. No Qt here: a GUI reads :meth:`poll`
from its own timer, a script calls :meth:`BackgroundTask.wait`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from CardiacMTLLib.errors import CardiacCancelled, CardiacError

logger = logging.getLogger(__name__)

T = TypeVar("T")
ProgressCallback = Callable[[int, int], None]


class TaskOutcome(Enum):
    """How a finished task ended."""

    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class TaskStatus:
    """What a GUI timer shows: frames done of ``total`` (``None`` before the first report) and the outcome
    once the task has finished (``None`` while it runs)."""

    done: int | None
    total: int | None
    outcome: TaskOutcome | None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def percent(self) -> int:
        """Progress in whole percent (0 before the first report)."""
        if not self.total or self.done is None:
            return 0
        return round(100 * self.done / self.total)


class BackgroundTask(Generic[T]):
    """``work(progress)`` on a daemon thread, with progress, cancellation and an outcome.

    ``start()`` runs it; ``poll()`` returns a :class:`TaskStatus` without blocking; ``cancel()`` asks the
    work to stop at its next progress report; ``wait()`` blocks until it has finished (scripts, tests) and
    ``wait_async()`` awaits it from an asyncio event loop. Once finished, ``outcome`` is a
    :class:`TaskOutcome`, ``result`` the work's return value (``SUCCEEDED`` only) and ``error`` the
    exception it raised (``FAILED`` only). A cancel that arrives after the last progress report still
    cancels: the result is dropped, so what the user asked to cancel never shows up. ``low_priority`` runs
    the thread at the lowest CPU priority (Linux; elsewhere unchanged), for work that should yield to the
    user's own actions.
    """

    def __init__(self, work: Callable[[ProgressCallback], T], name: str = "task", low_priority: bool = False):
        self.name = name
        self.result: T | None = None
        self.error: BaseException | None = None
        self._work = work
        self._low_priority = low_priority
        self._progress: tuple[int | None, int | None] = (None, None)
        self._outcome: TaskOutcome | None = None
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # ------------------------------------------------------------------------------------ controlling
    def start(self) -> BackgroundTask[T]:
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop; it does at its next progress report (after the current frame)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout_s: float | None = None) -> BackgroundTask[T]:
        """Block until the task has finished (or ``timeout_s`` passed; then ``finished`` is still false)."""
        self._finished.wait(timeout_s)
        return self

    async def wait_async(
        self,
        interval_s: float = 0.1,
        on_progress: Callable[[TaskStatus], None] | None = None,
        settle_on_cancel: bool = False,
    ) -> TaskOutcome:
        """Await the outcome from an event loop, polling every ``interval_s``; the loop stays free (for a
        Cancel click), and ``on_progress(status)`` is called on the loop whenever the progress changed.

        With ``settle_on_cancel``, a cancelled task's ``CANCELLED`` is returned as soon as the cancel is seen,
        without waiting for the work to reach its next progress report: on a busy machine a low-priority
        thread may take seconds to get there. The work then ends on its own; whatever it returns is dropped
        (its outcome is ``CANCELLED``), so nothing it computed shows up.
        """
        shown = None
        while True:
            if settle_on_cancel and self._cancel.is_set():
                return TaskOutcome.CANCELLED
            status = self.poll()
            if on_progress is not None and (status.done, status.total) != shown:
                shown = (status.done, status.total)
                on_progress(status)
            if status.finished:
                return status.outcome
            await asyncio.sleep(interval_s)

    # ---------------------------------------------------------------------------------------- reading
    def poll(self) -> TaskStatus:
        done, total = self._progress
        return TaskStatus(done=done, total=total, outcome=self._outcome if self.finished else None)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def outcome(self) -> TaskOutcome | None:
        return self._outcome if self.finished else None

    def result_or_raise(self) -> T:
        """The result of a succeeded task; the work's exception for a failed one, ``CardiacCancelled`` for a
        cancelled one (waits for the task to finish first)."""
        self.wait()
        if self._outcome is TaskOutcome.FAILED:
            raise self.error
        if self._outcome is TaskOutcome.CANCELLED:
            raise CardiacCancelled(f"{self.name} cancelled")
        return self.result

    # ----------------------------------------------------------------------------------------- thread
    def _report(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise CardiacCancelled(f"{self.name} cancelled")
        self._progress = (int(done), int(total))

    def _run(self) -> None:
        if self._low_priority:
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            result = self._work(self._report)
            if self._cancel.is_set():
                self._outcome = TaskOutcome.CANCELLED
            else:
                self.result, self._outcome = result, TaskOutcome.SUCCEEDED
        except CardiacCancelled:
            self._outcome = TaskOutcome.CANCELLED
        except Exception as exc:  # handed to the GUI with its cause; a bug keeps its traceback in the log
            self.error, self._outcome = exc, TaskOutcome.FAILED
            if isinstance(exc, CardiacError):
                logger.error("%s failed: %s", self.name, exc)
            else:
                logger.exception("%s failed", self.name)
        finally:
            self._finished.set()
