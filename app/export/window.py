"""Exporting the current view: File > Export… (Ctrl+E) in the window.

Formats: PNG at a scale (1x, 2x, 4x: image pixels per view pixel), SVG, GraphML, JSON and CSV (two
tables, ``NAME.nodes.csv`` and ``NAME.edges.csv``; the document's schema is in
``engine/scene/export.py``). Every export is a :class:`engine.scene.snapshot.ViewSnapshot`: pictures come
from :mod:`app.export.render`, files are written atomically by ``engine.scene.export`` (through
``engine.api``); a path that cannot be written is a dialog in the window and ``error: ...`` with
exit status 2 headless, and nothing is half-written.

Headless: ``circuit-inspector export`` (:mod:`app.export.command`) writes the same
:class:`ViewSnapshot`, built without a window by :func:`engine.scene.headless.headless_snapshot`,
with the same :func:`write_snapshot`; with the same session and size it gives the same picture.
"""

from __future__ import annotations

from pathlib import Path

from engine.scene.snapshot import ViewSnapshot, build_snapshot, view_document


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
