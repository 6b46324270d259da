"""The background task shared by the Slicer panel and the browser app: progress, cancel, outcome."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from CardiacMTLLib.errors import CardiacCancelled, CardiacInputError
from CardiacMTLLib.tasks import BackgroundTask, TaskOutcome, TaskStatus


def frames_work(n_frames: int, seconds_per_frame: float = 0.0, seen: list | None = None):
    """A stand-in for ``pipeline.analyze``: reports ``progress(done, total)`` after every frame."""

    def work(progress):
        for t in range(n_frames):
            time.sleep(seconds_per_frame)
            progress(t + 1, n_frames)
            if seen is not None:
                seen.append(t + 1)
        return f"{n_frames} frames"

    return work


def test_outcome_values_are_the_words_the_panels_use():
    assert [o.value for o in TaskOutcome] == ["succeeded", "cancelled", "failed"]
    assert TaskOutcome("cancelled") is TaskOutcome.CANCELLED


def test_success_hands_back_the_result_and_counts_every_frame():
    seen = []
    task = BackgroundTask(frames_work(7, seen=seen), name="analysis").start().wait(timeout_s=10)
    assert task.finished
    assert task.outcome is TaskOutcome.SUCCEEDED
    assert task.result == "7 frames" and task.error is None
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    status = task.poll()
    assert (status.done, status.total, status.percent) == (7, 7, 100)
    assert status.finished and status.outcome is TaskOutcome.SUCCEEDED
    assert task.result_or_raise() == "7 frames"


def test_poll_shows_progress_while_running_and_no_outcome_yet():
    gate, reported = threading.Event(), threading.Event()

    def work(progress):
        progress(3, 12)
        reported.set()
        gate.wait(10)
        return "done"

    task = BackgroundTask(work).start()
    assert reported.wait(10)
    status = task.poll()
    assert (status.done, status.total, status.percent) == (3, 12, 25)
    assert not status.finished and status.outcome is None and task.outcome is None
    gate.set()
    assert task.wait(10).outcome is TaskOutcome.SUCCEEDED


def test_status_before_the_first_report_is_zero_percent():
    assert TaskStatus(done=None, total=None, outcome=None).percent == 0
    assert not TaskStatus(done=None, total=None, outcome=None).finished


def test_cancel_stops_the_work_within_a_second_and_drops_the_result():
    seen = []
    task = BackgroundTask(frames_work(1000, seconds_per_frame=0.02, seen=seen)).start()
    while task.poll().done is None:
        time.sleep(0.01)
    cancelled_at = time.perf_counter()
    task.cancel()
    task.wait(timeout_s=5)
    assert task.finished
    assert time.perf_counter() - cancelled_at < 1.0
    assert task.outcome is TaskOutcome.CANCELLED
    assert task.result is None and task.error is None
    assert task.cancel_requested
    assert len(seen) < 1000
    with pytest.raises(CardiacCancelled):
        task.result_or_raise()


def test_a_cancel_after_the_last_report_still_cancels():
    gate = threading.Event()

    def work(progress):
        progress(1, 1)
        gate.wait(10)  # the slow part after the last frame (diagnosis, landmarks)
        return "result"

    task = BackgroundTask(work).start()
    while task.poll().done is None:
        time.sleep(0.01)
    task.cancel()
    gate.set()
    assert task.wait(10).outcome is TaskOutcome.CANCELLED
    assert task.result is None


def test_failure_carries_the_exception():
    def work(progress):
        progress(1, 4)
        raise CardiacInputError("patient001: no Info.cfg")

    task = BackgroundTask(work, name="analysis").start().wait(timeout_s=10)
    assert task.outcome is TaskOutcome.FAILED
    assert isinstance(task.error, CardiacInputError)
    assert str(task.error) == "patient001: no Info.cfg"
    assert task.result is None
    with pytest.raises(CardiacInputError, match="no Info.cfg"):
        task.result_or_raise()


def test_a_bug_in_the_work_is_a_failure_too():
    task = BackgroundTask(lambda progress: 1 / 0).start().wait(timeout_s=10)
    assert task.outcome is TaskOutcome.FAILED
    assert isinstance(task.error, ZeroDivisionError)


def test_wait_with_a_timeout_returns_while_the_work_runs():
    gate = threading.Event()
    task = BackgroundTask(lambda progress: gate.wait(10)).start()
    assert not task.wait(timeout_s=0.05).finished
    gate.set()
    assert task.wait(10).finished


def test_wait_async_keeps_the_event_loop_free_and_reports_progress():
    statuses, ticks = [], []

    async def main():
        task = BackgroundTask(frames_work(5, seconds_per_frame=0.05)).start()

        async def ticker():  # what a Cancel click needs: the loop runs while the task works
            while not task.finished:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        tick = asyncio.ensure_future(ticker())
        outcome = await task.wait_async(interval_s=0.01, on_progress=statuses.append)
        await tick
        return task, outcome

    task, outcome = asyncio.run(main())
    assert outcome is TaskOutcome.SUCCEEDED and task.result == "5 frames"
    assert len(ticks) > 5
    assert statuses[-1].finished and statuses[-1].done == 5
    assert [s.done for s in statuses if s.done is not None] == sorted(
        {s.done for s in statuses if s.done is not None}
    )


def test_cancel_from_the_event_loop_reaches_the_work():
    async def main():
        task = BackgroundTask(frames_work(1000, seconds_per_frame=0.02)).start()

        async def click_cancel():
            await asyncio.sleep(0.1)
            task.cancel()

        asyncio.ensure_future(click_cancel())
        return await asyncio.wait_for(task.wait_async(interval_s=0.01), timeout=5)

    assert asyncio.run(main()) is TaskOutcome.CANCELLED


def test_settle_on_cancel_answers_before_a_slow_frame_ends_and_its_result_is_dropped():
    """A browser's Cancel shows at once although the work (a starved low-priority thread) is still inside
    a frame; what the work returns afterwards never becomes the task's result."""
    in_frame, release = threading.Event(), threading.Event()

    def work(progress):
        progress(0, 2)
        in_frame.set()
        release.wait(10)  # a frame that takes its time
        return "a result nobody asked for"

    async def main(settle: bool):
        task = BackgroundTask(work).start()
        await asyncio.get_running_loop().run_in_executor(None, in_frame.wait, 5)
        task.cancel()
        try:
            return task, await asyncio.wait_for(
                task.wait_async(interval_s=0.01, settle_on_cancel=settle), timeout=1
            )
        except asyncio.TimeoutError:
            return task, None

    task, outcome = asyncio.run(main(settle=False))
    assert outcome is None and not task.finished  # without it the waiter waits for the frame
    release.set()
    assert task.wait(5).outcome is TaskOutcome.CANCELLED
    in_frame.clear(), release.clear()
    task, outcome = asyncio.run(main(settle=True))
    assert outcome is TaskOutcome.CANCELLED and not task.finished
    release.set()
    assert task.wait(5).outcome is TaskOutcome.CANCELLED and task.result is None


def test_a_cancel_after_the_last_frame_stops_the_analysis_before_its_measurements(monkeypatch):
    """The stages after segmentation (indices, landmarks, strain, diagnosis) are cancel points too: a Cancel
    pressed once every frame is segmented stops at the next stage, not after all of them."""
    from CardiacMTLLib import pipeline
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    reached = []
    monkeypatch.setattr(pipeline, "strain_or_none", lambda *a, **k: reached.append("strain"))
    monkeypatch.setattr(pipeline, "run_diagnosis", lambda *a, **k: reached.append("diagnosis") or {})
    case = generate_synthetic_cine(seed=4, num_frames=4)
    holder = {}

    def work(progress):
        def report(done, total):
            progress(done, total)
            if done >= total:  # the last frame is segmented and reported: the user presses Cancel now
                holder["task"].cancel()

        return pipeline.analyze(case.cine, device="cpu", progress=report)

    holder["task"] = task = BackgroundTask(work, name="analysis")
    task.start().wait(timeout_s=120)
    assert task.outcome is TaskOutcome.CANCELLED
    assert reached == []  # neither strain nor the diagnosis ran

    calls = []
    result = pipeline.measure(case.cine, case.labels, {}, checkpoint=lambda: calls.append(1))
    assert len(calls) == 4 and result.strain is None and result.diagnosis == {}  # one after each stage
