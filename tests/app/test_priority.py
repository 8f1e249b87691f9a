"""Interactive work first (app/workers/priority.py): background drawing waits while a click's
evaluation runs, and never forever."""

from __future__ import annotations

import threading
import time

from app.workers import priority


def test_nothing_interactive_returns_at_once():
    assert not priority.interactive_running()
    t = time.perf_counter()
    assert priority.yield_to_interactive(5.0)
    assert time.perf_counter() - t < 0.5


def test_background_waits_for_an_interactive_block_and_resumes_when_it_ends():
    started, waited = threading.Event(), []

    def background():
        started.set()
        t = time.perf_counter()
        ok = priority.yield_to_interactive(5.0)
        waited.append((ok, time.perf_counter() - t))

    with priority.interactive():
        assert priority.interactive_running()
        thread = threading.Thread(target=background)
        thread.start()
        started.wait(2)
        time.sleep(0.2)
        assert not waited  # still waiting while the block runs
    thread.join(5)
    assert waited and waited[0][0] and 0.15 < waited[0][1] < 4.0
    assert not priority.interactive_running()


def test_holds_release_and_expire_and_waits_are_bounded():
    priority.hold("a")
    priority.hold("a")  # renewing is not a second hold
    assert priority.interactive_running()
    t = time.perf_counter()
    assert not priority.yield_to_interactive(0.1)  # bounded: gives up after max_wait_s
    assert 0.05 < time.perf_counter() - t < 2.0
    priority.release("a")
    priority.release("a")  # releasing twice is harmless
    assert not priority.interactive_running()
    priority.hold("lost", max_s=0.1)  # nobody releases it: it expires by itself
    assert priority.interactive_running()
    assert priority.yield_to_interactive(3.0)
    assert not priority.interactive_running()
