"""A long-lived worker thread where the newest request wins (``docs/architecture.md``, "Threads"
and "The click path").

:class:`LatestWorker` keeps one pending slot per request kind (e.g. ``"setup"`` and ``"eval"``):
posting a request overwrites the unprocessed one of the same kind, so a burst of clicks costs one
evaluation, not a queue of them. The worker drains its slots in the order of ``SLOTS`` (a setup is
never starved by evaluations) and emits ``done``/``failed`` with small frozen payloads.

:class:`WorkerThread` is the GUI-side owner: Python holds both the worker and the ``QThread`` (no
``deleteLater``), the thread's ``quit`` is connected with a ``DirectConnection`` (no deadlock on
close), :meth:`WorkerThread.stop` waits for the thread before dropping anything, and while the thread
runs Python's garbage collector runs in the GUI thread only (:mod:`app.workers.gc_guard`). Signals of a worker
are only ever connected to ``@Slot`` methods of QObjects living in the GUI thread.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.workers import gc_guard

log = logging.getLogger(__name__)

#: Every QThread we started and have not yet waited for. Python must never free a running QThread
#: ("QThread: Destroyed while thread is still running" aborts the process), whatever happens to the
#: objects that own it (``docs/architecture.md``, "Threads").
LIVE_THREADS: set[QThread] = set()


@atexit.register
def _stop_live_threads() -> None:
    """At interpreter exit, end the threads nobody stopped (a script that never closed its window)."""
    for thread in list(LIVE_THREADS):
        thread.quit()
        thread.wait(10_000)
    LIVE_THREADS.clear()


@dataclass(frozen=True)
class Done:
    """A processed request and what it produced."""

    kind: str
    request: Any
    result: Any


@dataclass(frozen=True)
class Failed:
    """A request that raised. ``user_error``: the message is for the user (no traceback needed)."""

    kind: str
    request: Any
    message: str
    user_error: bool


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the engine's UserError, checked without importing the engine: an exception
    of that class means that its module, ``engine.errors``, is loaded (``engine.api`` may not be)."""
    errors = sys.modules.get("engine.errors")
    return errors is not None and isinstance(exc, errors.UserError)


class LatestWorker(QObject):
    """Base class: subclasses set ``SLOTS`` and implement ``process(kind, request)``."""

    SLOTS: tuple[str, ...] = ("request",)
    done = Signal(object)  # Done
    failed = Signal(object)  # Failed
    _wake = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._scheduled = False
        self._stopping = False
        # Emitted from the GUI thread, received in the worker's thread: a queued connection.
        self._wake.connect(self._drain)

    def post(self, kind: str, request: Any) -> None:
        """Replace the pending request of ``kind`` (any thread); wake the worker if it sleeps."""
        if kind not in self.SLOTS:
            raise ValueError(f"unknown request kind {kind!r}")
        with self._lock:
            self._pending[kind] = request
            if self._scheduled or self._stopping:
                return
            self._scheduled = True
        self._wake.emit()

    def stop(self) -> None:
        """Drop what is pending and refuse new work; the running request still finishes."""
        with self._lock:
            self._stopping = True
            self._pending.clear()

    def _take(self) -> tuple[str, Any] | None:
        with self._lock:
            for kind in self.SLOTS:
                if kind in self._pending and not self._stopping:
                    return kind, self._pending.pop(kind)
            self._scheduled = False
            return None

    @Slot()
    def _drain(self) -> None:
        while (item := self._take()) is not None:
            kind, request = item
            try:
                result = self.process(kind, request)
            except Exception as exc:  # noqa: BLE001 - reported to the GUI, the worker keeps running
                user = is_user_error(exc)
                if not user:
                    log.error("%s request failed:\n%s", kind, traceback.format_exc())
                message = str(exc) if user else f"{type(exc).__name__}: {exc}"
                self.failed.emit(Failed(kind, request, message, user))
                continue
            if result is not None:
                self.done.emit(Done(kind, request, result))

    def process(self, kind: str, request: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class WorkerThread(QObject):
    """Owns a worker and the QThread it runs in; lives in the GUI thread."""

    _quit = Signal()

    def __init__(self, worker: QObject, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        gc_guard.install()  # while the thread runs, Python's GC must not run in it (app.workers.gc_guard)
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self._quit.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        LIVE_THREADS.add(self.thread)
        self.thread.start()

    def stop(self) -> None:
        """Stop the worker and wait for its thread to end (idempotent)."""
        if self.thread is None:
            return
        stop = getattr(self.worker, "stop", None)
        if stop is not None:
            stop()
        self._quit.emit()
        self.thread.wait()
        LIVE_THREADS.discard(self.thread)
        self.thread = None
        gc_guard.uninstall()
