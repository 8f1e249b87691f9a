"""The QApplication of the desktop app: created once, named so QSettings and window managers know
it, themed, antialiased, with cyclic GC only in the GUI thread (docs/architecture.md, "Threads").
Used by the window, the screenshot mode and the benchmarks."""

from __future__ import annotations

import sys


def make_app():
    """The QApplication (created once), named so QSettings and window managers know the app."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from app.widgets.theme import apply_dark_theme
    from app.workers import gc_guard

    app = QApplication.instance()
    if app is None:
        # Only the program name: our own options were parsed by argparse already.
        app = QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "circuit-inspector"])
    app.setApplicationName("Circuit Inspector")
    app.setDesktopFileName("circuit-inspector")
    pg.setConfigOptions(antialias=True)
    apply_dark_theme(app)
    gc_guard.install()
    return app
