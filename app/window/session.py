"""Sessions in the window: capturing what is on screen, restoring it, and the Open/Save commands.

:func:`capture` reads the window into a :class:`engine.scene.session.Session`: run, task (or task file),
circuit file, view, ablation mode and baseline, ablated nodes and weights, every node label, the
selected node and pair, the |w| threshold and the range the graph shows. :func:`apply` puts one
back once its run has loaded (``WindowController.on_bundle`` calls it), so that saving, opening a
new window and loading gives the identical view. :func:`open_session` starts that load; a session
whose run cannot be opened gives a dialog that says what to do, and the window keeps what it shows
(``MainWindow.load_run`` asks :func:`missing_run_message` for the text).

Knows nothing about the engine; every dialog goes through :mod:`app.window.dialogs` (tests replace it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.window import dialogs
from engine.scene.bundle import SetupSpec
from engine.scene.session import Session, SessionError, read_session, write_session


def capture(w) -> Session:
    """The window's view as a Session (run-less when no run is loaded)."""
    s, b = w.state, w.state.bundle
    if b is None:
        return Session(view=s.view, mode=s.mode, baseline=s.baseline)
    from engine import api

    (x0, x1), (y0, y1) = w.view.vb.viewRange()
    return Session(run=api.run_name(b.run_path), task=b.task.name, task_file=b.spec.task_file,
                   circuit=_circuit_ref(b), view=s.view, mode=s.mode,
                   baseline=s.baseline, ablated_nodes=tuple(sorted(s.ablation.nodes)),
                   ablated_edges=tuple(sorted(s.ablation.edges)), labels=dict(s.labels), selected=s.selected,
                   pair=s.pair, threshold=s.threshold,
                   view_range=(float(x0), float(x1), float(y0), float(y1)) if w.view.graph is not None else None)


def _circuit_ref(b) -> str | None:
    """The circuit file relative to the run folder when it lies in it, so that a session of the bundled
    demo still opens after a reinstall moves the package; else its absolute path (a circuit in the
    per-user derived folder, whose name depends on where the run is, may shadow a bundled one of the
    same relative path)."""
    if b.circuit_path is None:
        return None
    path = Path(b.circuit_path).resolve()
    try:
        return path.relative_to(Path(b.run_path).resolve()).as_posix()
    except ValueError:
        return str(path)


def apply(w, session: Session) -> None:
    """Restore ``session`` on the bundle that has just been shown. Nodes and weights this model does
    not have are left out with a note in the Log dock."""
    s, log = w.state, w.log_panel.log
    s.set_view(session.view)
    s.set_baseline(session.baseline)
    if session.mode == "resample" and not s.bundle.resample:
        log("session: resample ablation needs an activation store; using mean")
    else:
        s.set_mode(session.mode)
    graph = s.bundle.model_graph
    nodes = [n for n in session.ablated_nodes if n in graph.index]
    for n in sorted(set(session.ablated_nodes) - set(nodes)):
        log(f"session: unknown node {n} ignored")
    known = {graph.edge_id(e) for e in range(graph.n_edges)} if session.ablated_edges else set()
    edges = [e for e in session.ablated_edges if e in known]
    for e in sorted(set(session.ablated_edges) - set(edges)):
        log(f"session: {e} is not a nonzero weight of this model; ignored")
    s.set_ablation(nodes, edges, "session")
    s.set_pair(max(0, min(session.pair, len(s.bundle.task_view.pairs) - 1)))
    for node, label in sorted(session.labels.items()):
        if node in graph.index:
            s.set_label(node, label)
    _restore_threshold(w, session.threshold)
    if session.selected in graph.index:
        s.select(session.selected)
    if session.view_range is not None:  # last: changing view or selection may move the range
        x0, x1, y0, y1 = session.view_range
        w.view.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)


def _restore_threshold(w, threshold: float) -> None:
    """Set the exact |w| threshold and move the slider to the matching share without re-deriving it."""
    w.state.set_threshold(threshold)
    weights = np.abs(w.state.graph.weight)
    share = int(round(100 * float(np.mean(weights < threshold)))) if len(weights) and threshold > 0 else 0
    w.threshold_slider.blockSignals(True)
    w.threshold_slider.setValue(min(share, w.threshold_slider.maximum()))
    w.threshold_slider.blockSignals(False)
    w.controller.update_threshold_label()


def missing_run_message(session: Session, reason: str) -> tuple[str, str]:
    """(title, text) of the dialog for a session whose run cannot be opened."""
    where = session.source or "The session"
    return ("Cannot open the session's run",
            f"{where} names the run {session.run}, which cannot be opened:\n{reason}\n\n"
            "If the run was moved, open it from its new place with File > Open run folder… (Ctrl+Shift+O), "
            "set up the view again and save the session (Ctrl+S); or correct \"run\" in the session file. "
            "Nothing else was changed.")


def open_session(w, session: Session) -> bool:
    """Load the session's run (or, without one, its task in the current run) and restore the view
    once it is shown. Returns whether loading started."""
    b = w.state.bundle
    if session.run is None and b is None:
        w.report_error("Cannot open session", "The session names no run and no run is open. Open a run first "
                       "(File > Open run folder…, Ctrl+Shift+O), then open the session again.")
        return False
    w._session = session
    if session.run is not None:
        return w.load_run(session.run, task=session.task, task_file=session.task_file, circuit=session.circuit)
    w._start_setup(SetupSpec(run=str(b.run_path), task=session.task, task_file=session.task_file,
                             circuit=session.circuit))
    return True


def _sessions_dir(b) -> Path:
    """Where Save session puts a run's sessions (and Open session starts looking)."""
    return b.derived / "sessions"


def open_session_dialog(w) -> None:
    b = w.state.bundle
    saved = _sessions_dir(b) if b is not None else None
    start = str(saved) if saved is not None and saved.is_dir() else w._last_open_dir()
    path = dialogs.ask_open_session(w, start)
    if path is None:
        return
    try:
        session = read_session(path)
    except SessionError as exc:
        w.report_error("Cannot open session", f"{exc}\n\nChoose a file saved with File > Save session… (Ctrl+S).")
        return
    open_session(w, session)


def save_session_dialog(w) -> None:
    b = w.state.bundle
    if b is None:
        w.report_error("Nothing to save", "Open a run first (File > Open run folder…, Ctrl+Shift+O).")
        return
    folder = _sessions_dir(b)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(w._last_open_dir())
    path = dialogs.ask_save_session(w, str(folder / f"{b.run_name}-{b.task.name}.json"))
    if path is None:
        return
    if path.suffix == "":
        path = path.with_suffix(".json")
    try:
        write_session(path, capture(w))
    except OSError as exc:
        w.report_error("Cannot save session", f"Cannot write {path}: {exc.strerror or exc}.\n\n"
                       "Nothing was written. Choose another folder or file name.")
        return
    w.statusBar().showMessage(f"Saved the session to {path}")
    w.log_panel.log(f"session saved to {path}")
