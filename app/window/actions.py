"""The menu actions and keyboard shortcuts of the main window: the File, Ablation and View menus.

Shortcuts: Ctrl+O open session, Ctrl+S save session (a session is the document: run, circuit and the
view), Ctrl+Shift+O open run folder, Ctrl+E export the view, Ctrl+T train a model, Ctrl+Q quit, F fit view,
/ find node, A toggle ablation of the selected node, Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y) undo / redo
ablation, Esc clear ablations (back to the baseline), V switch circuit / whole model. View > Reset layout
puts the docks back where they are at the first start.

:class:`WindowActions` builds the actions from :class:`Commands` (what each one calls; Undo, Redo and
Clear call the state) and keeps Undo, Redo, Clear and Toggle enabled as the state allows: it
subscribes to the state's ``ablationChanged`` and ``selectionChanged`` (Toggle needs a selected
node). The graph toolbar is :mod:`app.window.toolbar`. Knows nothing about the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

Command = Callable[[], object]


@dataclass(frozen=True)
class Commands:
    """What the menu items call (the main window's commands)."""

    open_run: Command
    open_session: Command
    save_session: Command
    export: Command
    task_file: Command
    quit: Command
    fit: Command
    find: Command
    toggle: Command
    switch_view: Command
    record: Command
    train: Command
    import_openai: Command
    reset_layout: Command


def _action(window: QMainWindow, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut:
        keys = shortcut if isinstance(shortcut, list) else [shortcut]
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.setStatusTip(tip)
    action.setToolTip(f"{text.replace('&', '').rstrip('.…')} ({action.shortcut().toString()})"
                      if shortcut else text.replace("&", ""))
    action.triggered.connect(slot)
    window.addAction(action)
    return action


class WindowActions(QObject):
    """The window's menu actions (one attribute each) and its File, Ablation and View menus;
    ``view_menu`` is where the window lists its docks."""

    def __init__(self, window: QMainWindow, state, commands: Commands) -> None:
        super().__init__(window)
        self._state = state
        c = commands
        # File menu (Train and Record are created last, in the order the window has always had)
        self.open_run = _action(window, "Open &run folder…", c.open_run, "Ctrl+Shift+O",
                                "Open a run folder (one with a config.json)")
        self.open_session = _action(window, "&Open session…", c.open_session, "Ctrl+O",
                                    "Restore a saved view: run, circuit, ablations, labels, zoom, selection")
        self.save_session = _action(window, "&Save session…", c.save_session, "Ctrl+S",
                                    "Save the view to reopen it later (Ctrl+O)")
        self.export = _action(window, "&Export view…", c.export, "Ctrl+E",
                              "Save the view as PNG or SVG, or its graph as GraphML, JSON or CSV")
        self.task_file = _action(window, "Load &task file…", c.task_file)
        self.quit = _action(window, "&Quit", c.quit, "Ctrl+Q")
        self.quit.setMenuRole(QAction.MenuRole.QuitRole)
        # View and Ablation menus
        self.fit = _action(window, "&Fit view", c.fit, "F", "Show the whole graph")
        self.find = _action(window, "F&ind node…", c.find, "/", "Find a node by id or label")
        self.toggle = _action(window, "Toggle &ablation of selected node", c.toggle, "A")
        self.undo = _action(window, "&Undo ablation", state.undo, "Ctrl+Z")
        self.redo = _action(window, "&Redo ablation", state.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.clear = _action(window, "&Clear ablations", state.clear_ablation, "Esc", "Back to the baseline")
        self.switch_view = _action(window, "Switch circuit / whole &model", c.switch_view, "V")
        self.reset_layout = _action(window, "Reset &layout", c.reset_layout,
                                    tip="Put the docks and the window back as they were at the first start")
        # File menu: background jobs
        self.record = _action(window, "&Record activation store", c.record)
        self.train = _action(window, "&Train a model…", c.train, "Ctrl+T", "Open the Training panel")
        self.import_openai = _action(window, "&Import OpenAI model…", c.import_openai, tip=(
            "Open a weight-sparse model released by OpenAI (beeg_config.json + final_model.pt), with its "
            "tokenizer and circuits"))
        self.view_menu = self._build_menus(window)
        state.ablationChanged.connect(self._on_ablation)
        state.selectionChanged.connect(self._on_selection)
        self._on_selection(state.selected)

    def _build_menus(self, window: QMainWindow) -> QMenu:
        """The File, Ablation and View menus; returns the View menu."""
        file_menu = window.menuBar().addMenu("&File")
        for a in (self.open_session, self.save_session, self.open_run, self.import_openai, self.task_file, None,
                  self.export, None, self.train, self.record, None, self.quit):
            file_menu.addSeparator() if a is None else file_menu.addAction(a)
        edit = window.menuBar().addMenu("&Ablation")
        for a in (self.toggle, self.undo, self.redo, self.clear):
            edit.addAction(a)
        view_menu = window.menuBar().addMenu("&View")
        for a in (self.fit, self.find, self.switch_view, None, self.reset_layout):
            view_menu.addSeparator() if a is None else view_menu.addAction(a)
        view_menu.addSeparator()
        return view_menu

    @Slot(object)
    def _on_ablation(self, ablation) -> None:
        self.undo.setEnabled(self._state.can_undo())
        self.redo.setEnabled(self._state.can_redo())
        self.clear.setEnabled(bool(ablation.nodes or ablation.edges))

    @Slot(object)
    def _on_selection(self, node) -> None:
        self.toggle.setEnabled(node is not None)
        self.toggle.setStatusTip("Ablate or restore the selected node" if node is not None
                                 else "Select a node first (click it, or press / to find one)")
