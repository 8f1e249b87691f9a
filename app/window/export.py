"""File > Export view… (Ctrl+E): export what the window's graph shows.

The snapshot is built from the live state (:func:`engine.scene.snapshot.build_snapshot`, the view
as a session would save it, and the range on screen) and written by
:func:`app.export.write.write_snapshot`, the same code as the headless ``circuit-inspector
export``. Formats: PNG at a scale (1x, 2x, 4x: image pixels per view pixel), SVG, GraphML, JSON and
CSV. A path that cannot be written is a dialog; nothing is half-written.
"""

from __future__ import annotations

from pathlib import Path

from app.export.write import write_snapshot
from engine.ablation.modes import circuit_mode_for
from engine.scene.snapshot import ViewSnapshot, build_snapshot


def current_result(state):
    """The engine's result for the ablation on screen, or None while its evaluation is pending."""
    ev = state.evaluation
    if ev is None or state.bundle is None:
        return None
    baseline = state.baseline if state.bundle.circuit is not None else "full"
    on_screen = (tuple(sorted(state.ablation.nodes)), tuple(sorted(state.ablation.edges)), state.mode, baseline)
    r = ev.request
    return ev.result if (r.nodes, r.edges, r.mode, r.baseline) == on_screen else None


def current_circuit_result(state):
    """The circuit alone as the mode on screen ablates the rest of the model, or None (the bundle's, in
    the circuit's own mode, then stands in; the export names the mode either way)."""
    ev = state.evaluation
    if ev is None or state.bundle is None or ev.request.circuit_mode != circuit_mode_for(state.mode):
        return None
    return ev.circuit_result


def view_size(w) -> tuple[int, int]:
    """The graph's size on screen in pixels (the size of a 1x export)."""
    return w.view.widget.width(), w.view.widget.height()


TRACE_WAIT_MS = 30_000  # how long an export waits for the pair's trace (~15 ms on the demo)


def pair_trace(w):
    """The selected pair traced under the window's ablations (an engine PairTrace), asked for and
    waited on when it is not on screen yet, so that every export carries the pair's attributions;
    None when it cannot be had (the export then has none, and attribution mode refuses)."""
    from PySide6.QtCore import QEventLoop, QTimer

    follower = w.service.trace
    if follower.current() is None:
        follower.force()
        loop = QEventLoop()
        w.state.traceChanged.connect(loop.quit)
        QTimer.singleShot(TRACE_WAIT_MS, loop.quit)
        loop.exec()
        w.state.traceChanged.disconnect(loop.quit)
    done = follower.current()
    return done.trace if done is not None else None


def window_snapshot(w, fmt: str | None = None) -> ViewSnapshot:
    """The window's view as a snapshot for ``fmt`` (None: any). Data formats carry the pair's
    attributions; a picture needs them only in attribution mode, so only then waits for the trace."""
    from app.window import session as session_view
    from engine.errors import UserError
    from engine.scene.export import IMAGE_FORMATS

    attribution = w.state.edge_mode == "attribution"
    wanted = w.state.bundle is not None and (fmt not in IMAGE_FORMATS or attribution)
    trace = pair_trace(w) if wanted else None
    if trace is None and attribution:
        raise UserError("the selected pair's attribution could not be computed, so the view cannot be "
                        "exported in attribution mode; switch the edges to weight, or try again")
    return build_snapshot(w.state.bundle, session_view.capture(w), view_size(w), current_result(w.state),
                          current_circuit_result(w.state), diff=w.state.diff, trace=trace)


def export_view(w, fmt: str, out: Path | str, scale: float = 1.0) -> list[Path] | None:
    """Export the window's view; a user error becomes a dialog. Returns the paths written."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.widgets import dialogs
    from engine import api

    w.statusBar().showMessage(f"Exporting the view as {fmt}…")
    w.statusBar().repaint()
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)  # the whole model takes a second or two
    paths, error = [], ""
    try:
        paths = write_snapshot(window_snapshot(w, fmt), fmt, out, scale)
    except api.UserError as exc:
        error = str(exc)
    finally:
        QApplication.restoreOverrideCursor()
    if error:
        w.statusBar().showMessage("Export failed; nothing was written.", dialogs.STATUS_ERROR_MS)
        w.report_error("Cannot export", f"{error}.\n\nNothing was written. Choose another folder or file name "
                       "(File > Export view…, Ctrl+E).")
        return None
    size = view_size(w)
    what = f" ({round(size[0] * scale)}x{round(size[1] * scale)} pixels)" if fmt == "png" else ""
    w.statusBar().showMessage(f"Exported the view to {', '.join(map(str, paths))}{what}")
    w.log_panel.log(f"exported {fmt} to {', '.join(map(str, paths))}{what}")
    return paths


def export_dialog(w) -> None:
    """File > Export…: ask for format, file and scale, then export."""
    from app.widgets import dialogs

    b = w.state.bundle
    if b is None:
        w.report_error("Nothing to export", "Open a run first (File > Open run folder…, Ctrl+Shift+O).")
        return
    folder = Path(w.last_export_dir or w.last_open_dir())
    start = folder / f"{b.run_name}-{b.task.name}-{w.state.view}.png"
    choice = dialogs.ask_export(w, start, view_size(w))
    if choice is not None and export_view(w, choice.format, choice.path, choice.scale):
        w.last_export_dir = str(Path(choice.path).parent)  # the next export starts there
