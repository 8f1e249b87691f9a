"""Sessions in the window: capturing what is on screen, restoring it, and the Open/Save dialogs.

:func:`capture_view` reads the state and the graph view into a :class:`engine.scene.session.Session`:
run, task (or task file), circuit file, view, ablation mode and baseline, ablated nodes and weights,
every node label, the selected node and pair, the |w| threshold and the range the graph shows.
:func:`apply` puts one back once its run has loaded (the main window calls it when the bundle it
was waiting for arrives), so that saving, opening a new window and loading gives the identical view.
:func:`ask_session` and :func:`save_session_dialog` are File > Open / Save session;
``MainWindow.open_session`` starts the load, and a session whose run cannot be opened gives a dialog
that says what to do (:func:`missing_run_message`) while the window keeps what it shows.

Knows nothing about the engine; every dialog goes through :mod:`app.widgets.dialogs` (tests replace it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QWidget

from app.widgets import dialogs
from engine.scene.session import Session, SessionError, read_session, write_session

ReportError = Callable[[str, str], None]


def capture(w) -> Session:
    """The view of window ``w`` (anything with ``state`` and ``view``) as a Session."""
    return capture_view(w.state, w.view)


def capture_view(state, view) -> Session:
    """The state and the graph ``view`` as a Session (run-less when no run is loaded)."""
    s, b = state, state.bundle
    if b is None:
        return Session(view=s.view, mode=s.mode, baseline=s.baseline)
    from engine import api

    (x0, x1), (y0, y1) = view.vb.viewRange()
    return Session(run=api.run_name(b.run_path), task=b.task.name, task_file=b.spec.task_file,
                   circuit=_circuit_ref(b), view=s.view, mode=s.mode,
                   baseline=s.baseline, ablated_nodes=tuple(sorted(s.ablation.nodes)),
                   ablated_edges=tuple(sorted(s.ablation.edges)), labels=dict(s.labels), selected=s.selected,
                   pair=s.pair, threshold=s.threshold,
                   view_range=(float(x0), float(x1), float(y0), float(y1)) if view.graph is not None else None)


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


def apply(session: Session, state, view, toolbar, log: Callable[[str], None]) -> None:
    """Restore ``session`` on the bundle the state has just been given: the state, the graph ``view``'s
    range and the ``toolbar``'s |w| slider (:class:`app.window.toolbar.GraphToolbar`). Nodes and weights
    this model does not have are left out with a ``log`` line (the Log dock)."""
    s = state
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
    toolbar.set_threshold(session.threshold)  # the exact value; the slider follows without re-deriving it
    if session.selected in graph.index:
        s.select(session.selected)
    if session.view_range is not None:  # last: changing view or selection may move the range
        x0, x1, y0, y1 = session.view_range
        view.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)


def missing_run_message(session: Session, reason: str) -> tuple[str, str]:
    """(title, text) of the dialog for a session whose run cannot be opened."""
    where = session.source or "The session"
    return ("Cannot open the session's run",
            f"{where} names the run {session.run}, which cannot be opened:\n{reason}\n\n"
            "If the run was moved, open it from its new place with File > Open run folder… (Ctrl+Shift+O), "
            "set up the view again and save the session (Ctrl+S); or correct \"run\" in the session file. "
            "Nothing else was changed.")


def sessions_dir(b) -> Path:
    """Where Save session puts a run's sessions (and Open session starts looking)."""
    return b.derived / "sessions"


def ask_session(parent: QWidget, state, fallback_dir: str, report_error: ReportError) -> Session | None:
    """File > Open session: ask for a session file (starting where Save session writes, else in
    ``fallback_dir``) and read it. None if cancelled, or after a dialog if it cannot be read."""
    b = state.bundle
    saved = sessions_dir(b) if b is not None else None
    start = str(saved) if saved is not None and saved.is_dir() else fallback_dir
    path = dialogs.ask_open_session(parent, start)
    if path is None:
        return None
    try:
        return read_session(path)
    except SessionError as exc:
        report_error("Cannot open session", f"{exc}\n\nChoose a file saved with File > Save session… (Ctrl+S).")
        return None


def save_session_dialog(parent: QWidget, state, view, fallback_dir: str, report_error: ReportError) -> Path | None:
    """File > Save session: ask where (in the run's sessions folder) and write the view of ``state``
    and ``view`` there. Returns the file written; None if cancelled, or after a dialog."""
    b = state.bundle
    if b is None:
        report_error("Nothing to save", "Open a run first (File > Open run folder…, Ctrl+Shift+O).")
        return None
    folder = sessions_dir(b)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(fallback_dir)
    path = dialogs.ask_save_session(parent, str(folder / f"{b.run_name}-{b.task.name}.json"))
    if path is None:
        return None
    if path.suffix == "":
        path = path.with_suffix(".json")
    try:
        write_session(path, capture_view(state, view))
    except OSError as exc:
        report_error("Cannot save session", f"Cannot write {path}: {exc.strerror or exc}.\n\n"
                     "Nothing was written. Choose another folder or file name.")
        return None
    return path
