"""Background jobs (recording an activation store, and later training and pruning) in a QThread.

An engine job is a generator of small frozen progress events that returns its result
(``docs/architecture.md``, "Threads"). :class:`JobWorker` iterates it in a worker thread and emits
each event; cancelling closes the generator (its ``finally`` cleans up). :class:`JobController` lives in the GUI
thread, owns the worker and its thread, relays the worker's signals through ``@Slot`` methods, and
refuses a second job while one runs. Knows nothing about what a job computes.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.workers import gc_guard
from app.workers.latest import LIVE_THREADS, is_user_error

log = logging.getLogger(__name__)


class JobBusy(RuntimeError):
    """A job is already running."""


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: ``status`` is "done", "failed" or "cancelled"."""

    name: str
    status: str
    result: Any = None
    message: str = ""
    user_error: bool = False


class JobWorker(QObject):
    """Runs ``factory()`` (a generator) to the end in the thread it was moved to."""

    progress = Signal(object)  # the job's event
    ended = Signal(object)  # JobOutcome

    def __init__(self, name: str, factory: Callable[[], Generator]) -> None:
        super().__init__()
        self.name = name
        self._factory = factory
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop after its current event (any thread)."""
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        gen = None
        outcome = JobOutcome(self.name, "cancelled")
        try:
            gen = self._factory()
            while not self._cancel.is_set():
                try:
                    event = next(gen)
                except StopIteration as stop:
                    outcome = JobOutcome(self.name, "done", stop.value)
                    break
                self.progress.emit(event)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI
            user = is_user_error(exc)
            if not user:
                log.error("job %s failed:\n%s", self.name, traceback.format_exc())
            outcome = JobOutcome(self.name, "failed", message=str(exc) if user else f"{type(exc).__name__}: {exc}",
                                 user_error=user)
        finally:
            if gen is not None:
                gen.close()  # a cancelled job cleans up in its own finally
        self.ended.emit(outcome)


class JobController(QObject):
    """Starts one job at a time and relays its signals in the GUI thread."""

    started = Signal(str)
    progress = Signal(str, object)  # job name, event
    finished = Signal(object)  # JobOutcome
    _quit = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: JobWorker | None = None
        self._thread: QThread | None = None
        self._outcome: JobOutcome | None = None

    @property
    def running(self) -> str | None:
        """The running job's name, or None."""
        return self._worker.name if self._worker is not None else None

    def start(self, name: str, factory: Callable[[], Generator]) -> None:
        """Run ``factory()`` in a new thread; JobBusy if a job is running."""
        if self._worker is not None:
            raise JobBusy(f"{self._worker.name} is still running; wait for it or cancel it first")
        gc_guard.install()  # no Python GC in the job's thread (app.workers.gc_guard)
        self._worker = JobWorker(name, factory)
        self._thread = QThread()
        self._thread.setObjectName(f"job-{name}")
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self._on_progress)
        self._worker.ended.connect(self._on_ended)
        self._thread.finished.connect(self._on_thread_finished)
        self._quit.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        LIVE_THREADS.add(self._thread)
        self._thread.start()
        self.started.emit(name)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    @Slot(object)
    def _on_progress(self, event: Any) -> None:
        if self._worker is not None:
            self.progress.emit(self._worker.name, event)

    @Slot(object)
    def _on_ended(self, outcome: JobOutcome) -> None:
        self._outcome = outcome
        self._quit.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is None:
            return  # shut down already
        self._thread.wait()
        LIVE_THREADS.discard(self._thread)
        self._quit.disconnect()
        outcome = self._outcome or JobOutcome(self.running or "job", "failed", message="the job ended unexpectedly")
        self._worker = self._thread = self._outcome = None
        gc_guard.uninstall()
        self.finished.emit(outcome)

    def shutdown(self) -> None:
        """Cancel a running job and wait for its thread (when the window closes)."""
        if self._worker is None or self._thread is None:
            return
        self._worker.cancel()
        self._quit.emit()  # exec() returns at once once run() ends, even if quit came first
        self._thread.wait()
        LIVE_THREADS.discard(self._thread)
        self._quit.disconnect()
        self._worker = self._thread = self._outcome = None
        gc_guard.uninstall()
