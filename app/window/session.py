"""Sessions in the window: capturing what is on screen, restoring it, and the Open/Save dialogs.

:func:`capture_view` reads the state and the graph view into a :class:`engine.scene.session.Session`:
run, task (or task file), circuit file, view, ablation mode and baseline, ablated nodes and weights,
every node label, the selected node and pair, the |w| threshold, the range the graph shows and the
colour overlay asked for (node effects).
:func:`apply` puts one back once its run has loaded (the main window calls it when the bundle it
was waiting for arrives), so that saving, opening a new window and loading gives the identical view.
:func:`ask_session` and :func:`save_session_dialog` are File > Open / Save session;
``MainWindow.open_session`` starts the load, and a session whose run cannot be opened gives a dialog
that says what to do (:func:`missing_run_message`) while the window keeps what it shows. A session
that only partly fits (an unknown node, ``pair`` 1e9 or -3, ``threshold`` NaN, ``view_range`` 1e308)
is restored without those parts, and the window says in one sentence what was left out
(:func:`dropped_message`).

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
    focus = {"focus": s.focus.on, "focus_hops": s.focus.hops, "min_degree": s.focus.min_degree,
             "edges": s.edge_mode, "side": s.side}
    focus["overlay"] = s.overlay  # the colour overlay asked for (app/panels/effects.py)
    if b is None:
        return Session(view=s.view, mode=s.mode, baseline=s.baseline, **focus)
    from engine import api

    (x0, x1), (y0, y1) = view.vb.viewRange()
    return Session(run=api.run_name(b.run_path), task=b.task.name, task_file=b.spec.task_file,
                   circuit=_circuit_ref(b), **focus,
                   diff=_circuit_ref(b, s.diff.partner) if s.diff is not None else None, view=s.view, mode=s.mode,
                   baseline=s.baseline, ablated_nodes=tuple(sorted(s.ablation.nodes)),
                   ablated_edges=tuple(sorted(s.ablation.edges)), labels=dict(s.labels), selected=s.selected,
                   pair=s.pair, threshold=s.threshold,
                   view_range=(float(x0), float(x1), float(y0), float(y1)) if view.graph is not None else None)


def _circuit_ref(b, file=None) -> str | None:
    """The circuit file (or ``file``: a diff's partner) relative to the run folder when it lies in it, so
    that a session of the bundled demo still opens after a reinstall moves the package; else its absolute
    path (a circuit in the per-user derived folder, whose name depends on where the run is, may shadow a
    bundled one of the same relative path)."""
    file = b.circuit_path if file is None else file
    if file is None:
        return None
    path = Path(file).resolve()
    try:
        return path.relative_to(Path(b.run_path).resolve()).as_posix()
    except ValueError:
        return str(path)


def apply(session: Session, state, view, toolbar, log: Callable[[str], None]) -> list[str]:
    """Restore ``session`` on the bundle the state has just been given: the state, the graph ``view``'s
    range and the ``toolbar``'s |w| slider (:class:`app.window.toolbar.GraphToolbar`). What cannot be
    used (what reading the file dropped, nodes and weights this model does not have, a pair beyond the
    task's) is left out, each with a ``log`` line (the Log dock); returns those, for
    :func:`dropped_message`."""
    s = state
    dropped = list(session.dropped)
    s.set_view(session.view)
    s.set_baseline(session.baseline)
    _apply_focus(session, s, dropped)
    s.set_edge_mode(session.edges, session.side)
    if session.mode == "resample" and not s.bundle.resample:
        dropped.append("resample ablation (the run has no activation store; mean is used)")
    else:
        s.set_mode(session.mode)
    s.set_overlay(session.overlay)  # after the view and mode: with no ranking yet, it ranks with them
    graph = s.bundle.model_graph
    nodes, edges = _known_ablations(session, graph, dropped)
    s.set_ablation(nodes, edges, "session")
    n_pairs = len(s.bundle.task_view.pairs)
    if session.pair >= n_pairs:
        dropped.append(f"pair {session.pair} (the task has {n_pairs} pairs; the last is shown)")
    s.set_pair(max(0, min(session.pair, n_pairs - 1)))
    unlabelled = sorted(n for n in session.labels if n not in graph.index)
    if unlabelled:
        dropped.append(f"the labels of {_some('unknown node', unlabelled)}")
    for node, label in sorted(session.labels.items()):
        if node in graph.index:
            s.set_label(node, label)
    toolbar.set_threshold(session.threshold)  # the exact value; the slider follows without re-deriving it
    if session.selected is not None and session.selected not in graph.index:
        dropped.append(f"the selection of the unknown node {session.selected}")
    elif session.selected is not None:
        s.select(session.selected)
    if session.view_range is not None:  # last: changing view or selection may move the range
        x0, x1, y0, y1 = session.view_range
        view.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
    for item in dropped:
        log(f"session: left out {item}")
    return dropped


def _apply_focus(session: Session, state, dropped: list[str]) -> None:
    """The focus settings and the circuit compared with (left out, and said, if it cannot be read)."""
    from engine.errors import UserError
    from engine.scene.diff import bundle_partner
    from engine.scene.focus import FocusSettings

    state.set_focus(FocusSettings(session.focus, session.focus_hops, session.min_degree))
    state.set_diff(None)
    if session.diff:
        try:
            state.set_diff(bundle_partner(state.bundle, session.diff))
        except UserError as exc:
            dropped.append(f"the comparison with the circuit {session.diff} ({exc})")


def _known_ablations(session: Session, graph, dropped: list[str]) -> tuple[list[str], list[str]]:
    """The session's ablated nodes and weights that ``graph`` has; the others are described in ``dropped``."""
    nodes = [n for n in session.ablated_nodes if n in graph.index]
    unknown = sorted(set(session.ablated_nodes) - set(nodes))
    if unknown:
        dropped.append(f"the ablation of {_some('unknown node', unknown)}")
    known = {graph.edge_id(e) for e in range(graph.n_edges)} if session.ablated_edges else set()
    edges = [e for e in session.ablated_edges if e in known]
    unknown = sorted(set(session.ablated_edges) - set(edges))
    if unknown:
        dropped.append(f"the ablation of {_some('weight', unknown)} that this model does not have")
    return nodes, edges


def _some(noun: str, items: list[str], shown: int = 3) -> str:
    """'the unknown node a', 'the unknown nodes a, b, c and 4 more'."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{noun}{'s' if len(items) > 1 else ''} {', '.join(items[:shown])}{more}"


def dropped_message(session: Session, dropped: list[str]) -> str:
    """One sentence for what :func:`apply` left out of ``session``."""
    where = Path(session.source).name if session.source else "the session"
    return (f"Restored {where} except what does not fit this run, which was left out: "
            f"{'; '.join(dropped)}.")


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
        return read_session(path, drop_invalid=True)  # what cannot be used is left out, and said so
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
