"""Menus, the toolbar and keyboard shortcuts of the main window.

Shortcuts: Ctrl+O open session, Ctrl+S save session (a session is the document: run, circuit and the
view), Ctrl+Shift+O open run folder, Ctrl+E export the view, Ctrl+T train a model, Ctrl+Q quit, F fit view,
/ find node, A toggle ablation of the selected node, Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y) undo / redo
ablation, Esc clear ablations (back to the baseline), V switch circuit / whole model.
Knows nothing about the engine; every action calls a method of the window or of its state.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QSlider, QToolBar, QWidget

MODE_TIPS = {"mean": "replace the node by its mean over pretraining text",
             "zero": "replace the node by 0",
             "resample": "replace the node by its value at random pretraining positions (needs a store)"}


def _action(window, text: str, slot, shortcut=None, tip: str = "") -> QAction:
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


def build_actions(w) -> None:
    """Create ``w.<name>_action`` attributes, the menus and the toolbar of MainWindow ``w``."""
    s = w.state
    w.open_action = _action(w, "Open &run folder…", w.open_run_dialog, "Ctrl+Shift+O",
                            "Open a run folder (one with a config.json)")
    w.open_session_action = _action(w, "&Open session…", w.open_session_dialog, "Ctrl+O",
                                    "Restore a saved view: run, circuit, ablations, labels, zoom, selection")
    w.save_session_action = _action(w, "&Save session…", w.save_session_dialog, "Ctrl+S",
                                    "Save the view to reopen it later (Ctrl+O)")
    w.export_action = _action(w, "&Export view…", w.export_dialog, "Ctrl+E",
                              "Save the view as PNG or SVG, or its graph as GraphML, JSON or CSV")
    w.task_file_action = _action(w, "Load &task file…", w.open_task_file_dialog)
    w.quit_action = _action(w, "&Quit", w.close, "Ctrl+Q")
    w.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    w.fit_action = _action(w, "&Fit view", w.view.fit, "F", "Show the whole graph")
    w.find_action = _action(w, "F&ind node…", w.focus_find, "/", "Find a node by id or label")
    w.toggle_action = _action(w, "Toggle &ablation of selected node", w.toggle_selected, "A")
    w.undo_action = _action(w, "&Undo ablation", s.undo, "Ctrl+Z")
    w.redo_action = _action(w, "&Redo ablation", s.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
    w.clear_action = _action(w, "&Clear ablations", s.clear_ablation, "Esc", "Back to the baseline")
    w.switch_view_action = _action(w, "Switch circuit / whole &model", w.switch_view, "V")
    w.record_action = _action(w, "&Record activation store", w.record_store)
    w.train_action = _action(w, "&Train a model…", w.show_train_panel, "Ctrl+T", "Open the Training panel")

    file_menu = w.menuBar().addMenu("&File")
    for a in (w.open_session_action, w.save_session_action, w.open_action, w.task_file_action, None,
              w.export_action, None, w.train_action, w.record_action, None, w.quit_action):
        file_menu.addSeparator() if a is None else file_menu.addAction(a)
    edit = w.menuBar().addMenu("&Ablation")
    for a in (w.toggle_action, w.undo_action, w.redo_action, w.clear_action):
        edit.addAction(a)
    w.view_menu = w.menuBar().addMenu("&View")
    for a in (w.fit_action, w.find_action, w.switch_view_action):
        w.view_menu.addAction(a)
    w.view_menu.addSeparator()
    _build_toolbar(w)


def _build_toolbar(w) -> None:
    s = w.state
    bar = QToolBar("Graph")
    bar.setObjectName("graphToolbar")
    bar.setMovable(False)
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    w.toolbar = bar
    group = QActionGroup(w)
    w.circuit_view_action = QAction("Circuit", w, checkable=True)
    w.model_view_action = QAction("Whole model", w, checkable=True)
    w.circuit_view_action.setToolTip("Show only the circuit's nodes and weights (V)")
    w.model_view_action.setToolTip("Show every node and nonzero weight of the model (V)")
    for a, view in ((w.circuit_view_action, "circuit"), (w.model_view_action, "model")):
        group.addAction(a)
        bar.addAction(a)
        a.triggered.connect(lambda _checked=False, v=view: s.set_view(v))
    bar.addSeparator()
    bar.addWidget(QLabel(" |w| ≥ "))
    w.threshold_slider = QSlider(Qt.Orientation.Horizontal)
    w.threshold_slider.setObjectName("thresholdSlider")
    w.threshold_slider.setRange(0, 99)
    w.threshold_slider.setFixedWidth(120)
    w.threshold_slider.setToolTip("Hide the weakest weights: the slider is the share of weights hidden")
    w.threshold_slider.valueChanged.connect(w.on_threshold_slider)
    bar.addWidget(w.threshold_slider)
    w.threshold_label = QLabel("")
    w.threshold_label.setMinimumWidth(120)
    bar.addWidget(w.threshold_label)
    bar.addSeparator()
    bar.addWidget(QLabel(" Ablate with "))
    w.mode_combo = QComboBox()
    w.mode_combo.setObjectName("modeCombo")
    for mode, tip in MODE_TIPS.items():
        w.mode_combo.addItem(mode)
        w.mode_combo.setItemData(w.mode_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
    w.mode_combo.currentTextChanged.connect(w.on_mode_combo)
    bar.addWidget(w.mode_combo)
    bar.addWidget(QLabel(" on top of "))
    w.baseline_combo = QComboBox()
    w.baseline_combo.setObjectName("baselineCombo")
    w.baseline_combo.addItems(["circuit", "full"])
    w.baseline_combo.setItemData(0, "the circuit alone: every node outside it is ablated", Qt.ItemDataRole.ToolTipRole)
    w.baseline_combo.setItemData(1, "the full model", Qt.ItemDataRole.ToolTipRole)
    w.baseline_combo.currentTextChanged.connect(w.on_baseline_combo)
    bar.addWidget(w.baseline_combo)
    bar.addSeparator()
    for a, short in ((w.undo_action, "Undo"), (w.redo_action, "Redo"), (w.clear_action, "Reset"),
                     (w.fit_action, "Fit")):
        a.setIconText(short)
        bar.addAction(a)
    spacer = QWidget()
    spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                         spacer.sizePolicy().verticalPolicy().Preferred)
    bar.addWidget(spacer)
    w.find_edit = QLineEdit()
    w.find_edit.setObjectName("findEdit")
    w.find_edit.setPlaceholderText("find node (/)  e.g. mlp.neuron:12")
    w.find_edit.setFixedWidth(210)
    w.find_edit.setClearButtonEnabled(True)
    w.find_edit.returnPressed.connect(w.find_node)
    bar.addWidget(w.find_edit)
