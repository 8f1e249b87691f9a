"""Exporting the current view: File > Export… (Ctrl+E) in the window, and the same headless.

Formats: PNG at a scale (1x, 2x, 4x: image pixels per view pixel), SVG, GraphML, JSON and CSV (two
tables, ``NAME.nodes.csv`` and ``NAME.edges.csv``; the document's schema is in
``engine/export.py``). Every export is a :class:`engine.scene.snapshot.ViewSnapshot`: pictures come
from :mod:`app.export.render`, files are written atomically by ``engine.scene.export`` (through
``engine.api``); a path that cannot be written is a dialog in the window and ``error: ...`` with
exit status 2 headless, and nothing is half-written.

Headless: ``python -m app.export.window RUN --format F --out OUT [options]``, which ``circuit-engine
export`` runs in a child process (why: ``engine/export.py``). It loads the run with the window's
own loader (:func:`engine.scene.bundle.load_bundle`: same layouts, labels and the 24 held-out pairs behind
the metrics), applies a session file (``--session``) and the options (``--view``, ``--mode``,
``--ablate``), shows the session's view range or fits the graph at ``--size``, and writes. Qt is
imported only for png and svg (offscreen). With the same session and size this gives the same
picture as the window's export.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from engine.scene.bundle import RunCache, SetupSpec, load_bundle
from engine.scene.session import Session, SessionError, read_session
from engine.scene.snapshot import ViewSnapshot, build_snapshot, view_document

_QT_APP = []  # the headless QGuiApplication, kept alive


# ---------------------------------------------------------------------------------------------
# Writing a snapshot (window and headless)


def write_snapshot(snap: ViewSnapshot, fmt: str, out: Path | str, scale: float = 1.0) -> list[Path]:
    """Write ``snap`` as ``fmt`` to ``out`` (csv: two files); raises engine UserError."""
    from engine import api

    if fmt not in api.EXPORT_IMAGE_FORMATS:
        return api.write_view(view_document(snap), fmt, out)
    api.check_output(out, fmt)  # before the work of rendering
    api.check_image_size(snap.size, scale)
    from app.export.render import png_bytes, rasterise, render_svg

    svg = render_svg(snap)
    return api.write_image(svg if fmt == "svg" else png_bytes(rasterise(svg, snap.size, scale)), fmt, out)


# ---------------------------------------------------------------------------------------------
# The window


def current_result(state):
    """The engine's result for the ablation on screen, or None while its evaluation is pending."""
    ev = state.evaluation
    if ev is None or state.bundle is None:
        return None
    baseline = state.baseline if state.bundle.circuit is not None else "full"
    on_screen = (tuple(sorted(state.ablation.nodes)), tuple(sorted(state.ablation.edges)), state.mode, baseline)
    r = ev.request
    return ev.result if (r.nodes, r.edges, r.mode, r.baseline) == on_screen else None


def view_size(w) -> tuple[int, int]:
    """The graph's size on screen in pixels (the size of a 1x export)."""
    return w.view.widget.width(), w.view.widget.height()


def window_snapshot(w) -> ViewSnapshot:
    from app.window import session as session_view

    return build_snapshot(w.state.bundle, session_view.capture(w), view_size(w), current_result(w.state))


def export_view(w, fmt: str, out: Path | str, scale: float = 1.0) -> list[Path] | None:
    """Export the window's view; a user error becomes a dialog. Returns the paths written."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from engine import api

    w.statusBar().showMessage(f"Exporting the view as {fmt}…")
    w.statusBar().repaint()
    QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)  # the whole model takes a second or two
    paths, error = [], ""
    try:
        paths = write_snapshot(window_snapshot(w), fmt, out, scale)
    except api.UserError as exc:
        error = str(exc)
    finally:
        QApplication.restoreOverrideCursor()
    if error:
        w.statusBar().showMessage("Export failed; nothing was written.")
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
    from app.window import dialogs  # here: the headless data formats must not import Qt

    b = w.state.bundle
    if b is None:
        w.report_error("Nothing to export", "Open a run first (File > Open run folder…, Ctrl+Shift+O).")
        return
    folder = Path(getattr(w, "_last_export_dir", "") or w._last_open_dir())
    start = folder / f"{b.run_name}-{b.task.name}-{w.state.view}.png"
    choice = dialogs.ask_export(w, start, view_size(w))
    if choice is not None and export_view(w, choice.format, choice.path, choice.scale):
        w._last_export_dir = str(Path(choice.path).parent)  # the next export starts there


# ---------------------------------------------------------------------------------------------
# Headless


def _gui_app():
    """A QGuiApplication for rendering offscreen; UserError if the gui extra is missing."""
    from engine import api

    try:
        import pyqtgraph  # noqa: F401  (the renderer reads the view's edge styles)
        from PySide6 import QtSvg  # noqa: F401
        from PySide6.QtGui import QGuiApplication
    except ImportError:
        raise api.UserError(api.EXPORT_GUI_MESSAGE) from None
    app = QGuiApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # chosen when the application starts: no display needed
        app = QGuiApplication(["circuit-inspector-export"])
    _QT_APP.append(app)
    return app


def _circuit_and_task(api, args, session: Session) -> tuple[str | None, str | None, str | None, bool]:
    """(circuit file, task, task file, whether a circuit must exist) from the options and session."""
    if args.circuit is None:
        if args.task is not None:
            return None, args.task, None, False
        return session.circuit, session.task, session.task_file, session.circuit is not None
    spec = Path(args.circuit).expanduser()
    if spec.suffix == ".json" or spec.exists():
        circuit = api.load_circuit(spec)  # reads the file: its task (a missing file is a UserError)
        return str(spec), args.task or circuit.task, circuit.settings.get("task_file"), True
    if args.task and args.task != args.circuit:
        raise api.UserError(f"--circuit {args.circuit} names a task but --task is {args.task}; give a circuit "
                            "file to show another task's circuit")
    return None, args.circuit, None, True


def _check_ids(api, bundle, state: Session) -> None:
    graph = bundle.model_graph
    bad = [n for n in (*state.ablated_nodes, *([state.selected] if state.selected else [])) if n not in graph.index]
    if bad:
        raise api.UserError(f"not a node of this model: {', '.join(bad[:5])} (node ids look like "
                            f"{graph.ids[0]})")
    if state.ablated_edges:
        known = {graph.edge_id(e) for e in range(graph.n_edges)}
        bad = [e for e in state.ablated_edges if e not in known]
        if bad:
            raise api.UserError(f"not a nonzero weight of this model: {', '.join(bad[:5])} (weights look like "
                                f"{graph.edge_id(0) if graph.n_edges else 'SRC->DST'})")
    if state.mode == "resample" and not bundle.resample:
        raise api.UserError("resample ablation needs the run's activation store; record one with "
                            f"`circuit-engine record {bundle.run_path}` or use --mode mean")


def headless_snapshot(args: argparse.Namespace) -> ViewSnapshot:
    """Load the run as the window does and build the snapshot the options and session describe."""
    from engine import api

    try:
        session = read_session(args.session) if args.session else Session()
    except SessionError as exc:
        raise api.UserError(str(exc)) from None
    circuit, task, task_file, need_circuit = _circuit_and_task(api, args, session)
    bundle, ablator = load_bundle(SetupSpec(run=str(args.run), task=task, task_file=task_file, circuit=circuit),
                                  RunCache())
    if need_circuit and bundle.circuit is None:
        raise api.UserError(f"no circuit for task {bundle.task.name} in {bundle.run_path}; make one with "
                            f"`circuit-engine prune {bundle.run_path} --task {bundle.task.name}`")
    nodes, edges = api.parse_ablate(args.ablate)
    state = replace(session, view=args.view or session.view, mode=args.mode or session.mode,
                    ablated_nodes=tuple(dict.fromkeys(session.ablated_nodes + nodes)),
                    ablated_edges=tuple(dict.fromkeys(session.ablated_edges + edges)),
                    labels={**bundle.labels, **session.labels})
    _check_ids(api, bundle, state)
    baseline = state.baseline if bundle.circuit is not None else "full"
    now = ablator.evaluate(state.ablated_nodes, state.ablated_edges, state.mode, baseline)
    return build_snapshot(bundle, state, args.size or api.EXPORT_DEFAULT_SIZE, now)


def main(argv: list[str] | None = None) -> int:
    """``python -m app.export.window``: see the module docstring. Prints one line (JSON with ``--json``)."""
    from engine import api

    parser = argparse.ArgumentParser(prog="python -m app.export.window",
                                     description="Export a circuit view as the app draws it (see circuit-engine export).")
    api.add_export_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if args.format in api.EXPORT_IMAGE_FORMATS:
            _gui_app()
        snap = headless_snapshot(args)
        paths = write_snapshot(snap, args.format, args.out, args.scale)
    except api.UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    png = args.format == "png"
    result = {"format": args.format, "paths": [str(p) for p in paths], "view": snap.view, "task": snap.task,
              "circuit": snap.circuit, "nodes": snap.graph.n_nodes, "edges": snap.graph.n_edges,
              "scale": args.scale if png else 1.0,
              "width": round(snap.size[0] * args.scale) if png else snap.size[0],
              "height": round(snap.size[1] * args.scale) if png else snap.size[1]}
    print(json.dumps(result) if args.json else f"wrote {', '.join(result['paths'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
