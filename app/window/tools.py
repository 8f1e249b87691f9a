"""Installs the circuit tools into the main window: the Pruning and Formation docks (left, tabbed with
Tasks), the Compare and Node effects docks (bottom, tabbed with the Log) and a Circuits menu that
opens them. Each dock's controller runs its job through the window's one JobController (in its
:class:`app.panels.job_box.PanelContext`), so only one pruning, comparison, formation, ranking or
recording runs at a time, and closing the window cancels it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QMenu, QScrollArea, QWidget

from app.graph.node_style import NodeHeat
from app.panels.compare import CompareController, CompareView
from app.panels.docks import add_dock
from app.panels.effects import EffectsController, EffectsPanel
from app.panels.formation import FormationController, FormationPanel
from app.panels.job_box import PanelContext
from app.panels.prune import PruneController, PrunePanel


@dataclass(frozen=True)
class CircuitTools:
    """The panels, docks and controllers :func:`install` made."""

    prune_panel: PrunePanel
    formation_panel: FormationPanel
    compare_view: CompareView
    prune_dock: QDockWidget
    formation_dock: QDockWidget
    compare_dock: QDockWidget
    prune_controller: PruneController
    formation_controller: FormationController
    compare_controller: CompareController
    effects_panel: EffectsPanel
    effects_dock: QDockWidget
    effects_controller: EffectsController


def install(window: QMainWindow, ctx: PanelContext, *, tasks_dock: QDockWidget, log_dock: QDockWidget,
            view_menu: QMenu) -> CircuitTools:
    """Add the Pruning and Formation docks (tabbed with ``tasks_dock``), the Compare and Node effects
    docks (tabbed with ``log_dock``), their controllers and the Circuits menu to ``window``; list the
    docks in ``view_menu``."""
    left, bottom = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.BottomDockWidgetArea
    prune_panel, formation_panel, compare_view, effects = PrunePanel(), FormationPanel(), CompareView(), EffectsPanel()
    prune_dock = add_dock(window, "Pruning", "pruneDock", scrolled(prune_panel), left, min_width=180)
    formation_dock = add_dock(window, "Formation", "formationDock", scrolled(formation_panel), left, min_width=180)
    compare_dock = add_dock(window, "Compare", "compareDock", scrolled(compare_view), bottom)
    effects_dock = add_dock(window, "Node effects", "effectsDock", scrolled(effects), bottom)
    window.tabifyDockWidget(tasks_dock, prune_dock)
    window.tabifyDockWidget(prune_dock, formation_dock)
    window.tabifyDockWidget(log_dock, compare_dock)
    window.tabifyDockWidget(compare_dock, effects_dock)
    tasks_dock.raise_()
    log_dock.raise_()
    tools = CircuitTools(prune_panel, formation_panel, compare_view, prune_dock, formation_dock, compare_dock,
                         PruneController(ctx, prune_panel, window),
                         FormationController(ctx, formation_panel, window),
                         CompareController(ctx, compare_view, window),
                         effects, effects_dock, EffectsController(ctx, effects, NodeHeat, window))

    menu = window.menuBar().addMenu("&Circuits")
    for text, dock, tip in (("&Prune a task…", prune_dock, "Find the circuit of a task in the background"),
                            ("&Compare sparse vs dense…", compare_dock, "Circuit sizes of the open run and a dense twin"),
                            ("Circuit &formation…", formation_dock, "Prune a task at every checkpoint"),
                            ("Node &effects…", effects_dock, "Rank the nodes by their effect on the task")):
        action = QAction(text, window)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False, d=dock: show_dock(window, d, tall=d in (compare_dock, effects_dock)))
        menu.addAction(action)
    for dock in (prune_dock, formation_dock, compare_dock, effects_dock):
        view_menu.addAction(dock.toggleViewAction())
    return tools


def scrolled(panel: QWidget) -> QScrollArea:
    """The panel in a frameless scroll area: a small window can still shrink its docks."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def show_dock(window: QMainWindow, dock: QDockWidget, tall: bool = False) -> None:
    """Show and raise a dock, and make room for it: a ``tall`` one (Compare, Node effects) gets about 45% of the
    window's height, the others (Pruning, Formation) at least 320 pixels of width."""
    dock.show()
    dock.raise_()
    if dock.isFloating():
        return
    if tall:
        window.resizeDocks([dock], [int(window.height() * 0.45)], Qt.Orientation.Vertical)
    elif dock.width() < 320:
        window.resizeDocks([dock], [320], Qt.Orientation.Horizontal)
