"""Installs the circuit-finding tools into the main window: the Pruning and Formation docks (left,
tabbed with Tasks), the Compare dock (bottom, tabbed with the Log) and a Circuits menu that opens
them. Each dock's controller runs its job through the window's one JobController, so only one
pruning, comparison, formation or recording runs at a time, and closing the window cancels it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget

from app.panels.compare import CompareController, CompareView
from app.panels.formation import FormationController, FormationPanel
from app.panels.prune import PruneController, PrunePanel


def install(w) -> None:
    """Create ``w.prune_panel``, ``w.formation_panel``, ``w.compare_view``, their docks and
    controllers, and the Circuits menu."""
    left, bottom = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
    w.prune_panel = PrunePanel()
    w.formation_panel = FormationPanel()
    w.compare_view = CompareView()
    w.prune_dock = w._dock("Pruning", "pruneDock", scrolled(w.prune_panel), left)
    w.formation_dock = w._dock("Formation", "formationDock", scrolled(w.formation_panel), left)
    w.compare_dock = w._dock("Compare", "compareDock", scrolled(w.compare_view), bottom)
    w.tabifyDockWidget(w.tasks_dock, w.prune_dock)
    w.tabifyDockWidget(w.prune_dock, w.formation_dock)
    w.tabifyDockWidget(w.log_dock, w.compare_dock)
    w.tasks_dock.raise_()
    w.log_dock.raise_()
    w.prune_controller = PruneController(w, w.prune_panel)
    w.formation_controller = FormationController(w, w.formation_panel)
    w.compare_controller = CompareController(w, w.compare_view)

    menu = w.menuBar().addMenu("&Circuits")
    for text, dock, tip in (("&Prune a task…", w.prune_dock, "Find the circuit of a task in the background"),
                            ("&Compare sparse vs dense…", w.compare_dock, "Circuit sizes of the open run and a dense twin"),
                            ("Circuit &formation…", w.formation_dock, "Prune a task at every checkpoint")):
        action = QAction(text, w)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False, d=dock: show_dock(w, d))
        menu.addAction(action)
    for dock in (w.prune_dock, w.formation_dock, w.compare_dock):
        w.view_menu.addAction(dock.toggleViewAction())


def scrolled(panel: QWidget) -> QScrollArea:
    """The panel in a frameless scroll area: a small window can still shrink its docks."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def show_dock(w, dock) -> None:
    """Show and raise a dock, and make room for it: the Compare dock gets about 45% of the window's
    height, the Pruning and Formation docks at least 320 pixels of width."""
    dock.show()
    dock.raise_()
    if dock.isFloating():
        return
    if dock is w.compare_dock:
        w.resizeDocks([dock], [int(w.height() * 0.45)], Qt.Orientation.Vertical)
    elif dock.width() < 320:
        w.resizeDocks([dock], [320], Qt.Orientation.Horizontal)
