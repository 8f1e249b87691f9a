"""Loading runs in the window: what waits for what.

A load is a :class:`engine.scene.bundle.SetupSpec` for the ablation service's worker, which imports
the engine, loads the model, lays out the graph and computes the baselines. :class:`RunLoader` holds
a setup back until the window's first paint (the worker's engine import would otherwise compete with
it), keeps a session for the bundle it waits for (a failed load forgets it), hands the arriving
bundle to the window (``show_bundle``), reports a failed load (a hint in the Log dock for the demo
opened at start, a dialog otherwise) and emits ``ready`` once a loaded run's graph and first
evaluation are on screen, and the selected pair's trace when something shows it (a selected node,
attribution edges; ``--screenshot`` and the tests wait for it). Knows nothing about docks or
the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.widgets import dialogs
from engine.scene.bundle import SetupSpec
from engine.scene.session import Session


class RunLoader(QObject):
    """See the module docstring. ``held()``: whether a setup must wait for the first paint (call
    :meth:`release` after it); ``show_bundle(bundle, session)``: show a loaded bundle and apply the
    session that waited for it (or None); ``session``: the session for the first load."""

    ready = Signal()

    def __init__(self, *, state, service, view, log_panel, show_status: Callable[..., None],
                 report_error: Callable[[str, str], None], held: Callable[[], bool],
                 show_bundle: Callable[[object, Session | None], None], session: Session | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._service = service
        self._view = view
        self._log_panel = log_panel
        self._status = show_status
        self._report = report_error
        self._held = held
        self._show_bundle = show_bundle
        self.pending_session: Session | None = session  # applied when the bundle it waits for arrives
        self._held_spec: SetupSpec | None = None
        self._default_load = False  # the demo at start is loading: a failure is a hint, not a dialog
        self._ready_sent = False
        service.setupDone.connect(self._on_setup_done)
        service.setupFailed.connect(self._on_setup_failed)
        view.drawn.connect(self._check_ready)
        # Connected after the window's controller: ready follows the first result's status and Log line.
        state.evaluationChanged.connect(self._check_ready)
        state.traceChanged.connect(self._check_ready)

    def start(self, spec: SetupSpec, *, default: bool = False) -> None:
        """Load ``spec`` (the newest load wins); ``default``: the bundled demo opened at start."""
        self._ready_sent = False
        if default:
            self._default_load = True
        if self._held():
            self._held_spec = spec
        else:
            self._service.load(spec)
        self._log_panel.set_progress(f"loading {Path(spec.run).name}…", None, False)
        self._status(f"Loading {spec.run}…")

    def release(self) -> None:
        """The window has painted: start the setup held back until now."""
        if self._held_spec is not None:
            spec, self._held_spec = self._held_spec, None
            self._service.load(spec)

    def take_session(self) -> Session | None:
        """The waiting session, which is forgotten (its load did not start)."""
        session, self.pending_session = self.pending_session, None
        return session

    @Slot(object)
    def _on_setup_done(self, bundle) -> None:
        self._default_load = False
        self._show_bundle(bundle, self.take_session())

    @Slot(object)
    def _on_setup_failed(self, failed) -> None:
        self._log_panel.set_progress("idle", 0.0, False)
        self._log_panel.log(f"error: {failed.message}")
        self.pending_session = None  # a session waiting for this load must not apply to a later one
        if self._default_load:  # the demo at start: an empty window with a hint, no dialog
            self._default_load = False
            self._status("The bundled demo is not available. File > Open run folder... (Ctrl+Shift+O) opens a run.")
            self._ready_sent = True
            self.ready.emit()
            return
        self._status(f"Could not open {Path(failed.request.run).name}", dialogs.STATUS_ERROR_MS)
        b = self._state.bundle
        same_run = b is not None and failed.request.run == str(b.run_path)
        self._report("Cannot load task" if same_run else "Cannot open run", failed.message)

    @Slot()
    def _check_ready(self, *args) -> None:
        if (not self._ready_sent and self._state.bundle is not None and self._state.evaluation is not None
                and self._view.is_drawn and not self._service.busy_setup and not self._service.trace.pending):
            self._ready_sent = True
            self.ready.emit()
