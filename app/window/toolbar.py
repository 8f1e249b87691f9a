"""The graph toolbar: circuit / whole model, the |w| threshold, the ablation mode and baseline,
Undo / Redo / Reset / Fit and the find box.

:class:`GraphToolbar` is a view of :class:`app.model.state.AppState`: it follows the state's view,
mode, baseline and threshold (without echoing them back) and changes the state when the user uses a
widget. The slider is the share of weights hidden; it is turned into a |w| threshold of the graph on
screen. Each view keeps its own threshold (:class:`app.model.state.AppState`): switching the view
moves the slider to that view's share. Choosing resample ablation without an activation store is
refused with a dialog. Knows nothing about the engine or threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QSizePolicy, QSlider, QToolBar, QWidget

from app.widgets import dialogs
from engine.ablation.modes import BASELINES, MODES

MODE_TIPS = {"mean": "replace the node by its mean over pretraining text",
             "zero": "replace the node by 0",
             "resample": "replace the node by its value at random pretraining positions (needs a store)"}
BASELINE_TIPS = {"circuit": "the circuit alone: every node outside it is ablated",
                 "full": "the full model"}
EDIT_ICON_TEXTS = ("Undo", "Redo", "Reset", "Fit")  # short texts of the edit actions on the bar
#: What the edges (and node colours) show: (combo text, AppState.edge_mode, side, tooltip).
EDGE_CHOICES = (("weight", "weight", None, "edges by weight; nodes by kind"),
                ("attribution A", "attribution", "A", "on the selected pair's prompt A: edges by weight × source "
                 "signal, nodes by the estimated effect of ablating each on A's logit diff"),
                ("attribution B", "attribution", "B", "the same on prompt B"),
                ("attribution A−B", "attribution", "A-B", "A's attribution minus B's: what separates the two sides"))


class GraphToolbar(QToolBar):
    """See the module docstring. ``edit_actions``: Undo, Redo, Clear and Fit (shown as
    :data:`EDIT_ICON_TEXTS`); ``report_error(title, text)``: a dialog; ``show_status(text)``: the
    status bar; ``focus_graph()``: give the graph the keyboard focus (after find)."""

    def __init__(self, state, edit_actions: Sequence[QAction], report_error: Callable[[str, str], None],
                 show_status: Callable[..., None], focus_graph: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__("Graph", parent)
        self.setObjectName("graphToolbar")
        self.setMovable(False)
        self._state = state
        self._report = report_error
        self._status = show_status
        self._focus_graph = focus_graph
        self._add_view_actions()
        self.addSeparator()
        self._add_threshold()
        self._make_edge_mode()  # shown on the second row (app.window.focus_bar): this one is full
        self.addSeparator()
        self._add_ablation_combos()
        self.addSeparator()
        for action, short in zip(edit_actions, EDIT_ICON_TEXTS):
            action.setIconText(short)
            self.addAction(action)
        self._add_find()
        state.viewChanged.connect(self._on_view)
        state.modeChanged.connect(self._on_mode)
        state.baselineChanged.connect(self._on_baseline)
        state.thresholdChanged.connect(self.update_threshold_label)
        state.edgeModeChanged.connect(self._on_edge_mode)

    # -- building ------------------------------------------------------------------------------
    def _add_view_actions(self) -> None:
        group = QActionGroup(self)
        self.circuit_view_action = QAction("Circuit", self, checkable=True)
        self.model_view_action = QAction("Whole model", self, checkable=True)
        self.circuit_view_action.setToolTip("Show only the circuit's nodes and weights (V)")
        self.model_view_action.setToolTip("Show every node and nonzero weight of the model (V)")
        for action, view in ((self.circuit_view_action, "circuit"), (self.model_view_action, "model")):
            group.addAction(action)
            self.addAction(action)
            action.triggered.connect(lambda _checked=False, v=view: self._state.set_view(v))

    def _add_threshold(self) -> None:
        self.addWidget(QLabel(" |w| ≥ "))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setObjectName("thresholdSlider")
        self.threshold_slider.setRange(0, 99)
        self.threshold_slider.setFixedWidth(120)
        self.threshold_slider.setToolTip("Hide the weakest weights: the slider is the share of weights hidden")
        self.threshold_slider.valueChanged.connect(self._on_threshold_slider)
        self.addWidget(self.threshold_slider)
        self.threshold_label = QLabel("")
        self.threshold_label.setMinimumWidth(120)
        self.addWidget(self.threshold_label)

    def _make_edge_mode(self) -> None:
        self.edge_combo = QComboBox()
        self.edge_combo.setObjectName("edgeModeCombo")
        self.edge_combo.setToolTip("What edge colours and widths show: weights, or attribution on the selected pair")
        for text, _mode, _side, tip in EDGE_CHOICES:
            self.edge_combo.addItem(text)
            self.edge_combo.setItemData(self.edge_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.edge_combo.currentIndexChanged.connect(self._on_edge_combo)

    def _add_ablation_combos(self) -> None:
        self.addWidget(QLabel(" Ablate with "))
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("modeCombo")
        for mode in MODES:
            self.mode_combo.addItem(mode)
            self.mode_combo.setItemData(self.mode_combo.count() - 1, MODE_TIPS[mode], Qt.ItemDataRole.ToolTipRole)
        self.mode_combo.currentTextChanged.connect(self._on_mode_combo)
        self.addWidget(self.mode_combo)
        self.addWidget(QLabel(" on top of "))
        self.baseline_combo = QComboBox()
        self.baseline_combo.setObjectName("baselineCombo")
        for baseline in BASELINES:
            self.baseline_combo.addItem(baseline)
            self.baseline_combo.setItemData(self.baseline_combo.count() - 1, BASELINE_TIPS[baseline],
                                            Qt.ItemDataRole.ToolTipRole)
        self.baseline_combo.currentTextChanged.connect(self._on_baseline_combo)
        self.addWidget(self.baseline_combo)

    def _add_find(self) -> None:
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)
        self.find_edit = QLineEdit()
        self.find_edit.setObjectName("findEdit")
        self.find_edit.setPlaceholderText("find node (/)  e.g. mlp.neuron:12")
        self.find_edit.setFixedWidth(210)
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.returnPressed.connect(self.find_node)
        self.addWidget(self.find_edit)

    # -- state -> widgets ----------------------------------------------------------------------
    @Slot(str)
    def _on_view(self, view: str) -> None:
        b = self._state.bundle
        self.circuit_view_action.setEnabled(b is not None and b.circuit is not None)
        (self.circuit_view_action if view == "circuit" else self.model_view_action).setChecked(True)
        self._show_threshold()  # this view's own threshold, not the other view's share

    @Slot(str)
    def _on_edge_mode(self, _mode: str) -> None:
        s = self._state
        index = next(i for i, (_t, m, side, _tip) in enumerate(EDGE_CHOICES)
                     if m == s.edge_mode and (side is None or side == s.side))
        self.edge_combo.blockSignals(True)
        self.edge_combo.setCurrentIndex(index)
        self.edge_combo.blockSignals(False)

    @Slot(str)
    def _on_mode(self, mode: str) -> None:
        self.mode_combo.blockSignals(True)
        self.mode_combo.setCurrentText(mode)
        self.mode_combo.blockSignals(False)

    @Slot(str)
    def _on_baseline(self, baseline: str) -> None:
        b = self._state.bundle
        self.baseline_combo.blockSignals(True)
        self.baseline_combo.setCurrentText(baseline)
        self.baseline_combo.model().item(0).setEnabled(b is not None and b.circuit is not None)
        self.baseline_combo.blockSignals(False)

    @Slot()
    def update_threshold_label(self, *args) -> None:
        """"threshold  (shown of all)" for the graph on screen."""
        graph, threshold = self._state.graph, self._state.threshold
        if graph is None:
            return
        shown = int(np.sum(np.abs(graph.weight) >= threshold))
        self.threshold_label.setText(f"{threshold:.3g}  ({shown:,} of {graph.n_edges:,})")

    def set_threshold(self, threshold: float) -> None:
        """Set the exact |w| threshold and move the slider to the matching share without re-deriving
        the threshold from it (a restored session shows its own value)."""
        self._state.set_threshold(threshold)
        self._show_threshold()

    def _show_threshold(self) -> None:
        """Move the slider to the share the state's threshold hides in the graph on screen (without
        re-deriving the threshold from it) and update the label."""
        graph, threshold = self._state.graph, self._state.threshold
        weights = np.abs(graph.weight) if graph is not None else np.zeros(0)
        share = int(round(100 * float(np.mean(weights < threshold)))) if len(weights) and threshold > 0 else 0
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(min(share, self.threshold_slider.maximum()))
        self.threshold_slider.blockSignals(False)
        self.update_threshold_label()

    # -- widgets -> state ----------------------------------------------------------------------
    @Slot(int)
    def _on_threshold_slider(self, value: int) -> None:
        graph = self._state.graph
        if graph is None:
            return
        absw = np.abs(graph.weight)
        self._state.set_threshold(float(np.quantile(absw, value / 100.0)) if value > 0 and len(absw) else 0.0)
        self.update_threshold_label()

    @Slot(str)
    def _on_mode_combo(self, mode: str) -> None:
        s = self._state
        if not mode or s.bundle is None:
            return
        if mode == "resample" and not s.bundle.resample:
            self._report("Resample ablation needs an activation store",
                         "Resample ablation replaces a node by its value at random pretraining positions, "
                         "which come from the run's activation store. Record one (File > Record activation "
                         "store) and try again.")
            self.mode_combo.setCurrentText(s.mode)
            return
        s.set_mode(mode)

    @Slot(int)
    def _on_edge_combo(self, index: int) -> None:
        if 0 <= index < len(EDGE_CHOICES):
            _text, mode, side, _tip = EDGE_CHOICES[index]
            self._state.set_edge_mode(mode, side)

    @Slot(str)
    def _on_baseline_combo(self, baseline: str) -> None:
        if baseline and self._state.bundle is not None:
            self._state.set_baseline(baseline)

    @Slot()
    def focus_find(self) -> None:
        self.find_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.find_edit.selectAll()

    @Slot()
    def find_node(self) -> None:
        """Select the node whose id or label matches the find box; switch to the whole model if needed."""
        text, s = self.find_edit.text().strip(), self._state
        if not text or s.bundle is None:
            return
        model = s.bundle.model_graph
        low = text.lower()
        hit = text if text in model.index else next(
            (n for n, lab in s.labels.items() if lab.lower() == low and n in model.index), None)
        if hit is None:
            hit = next((n for n in s.graph.ids if low in n.lower()), None) or \
                next((n for n in model.ids if low in n.lower()), None)
        if hit is None:
            self._status(f"No node matches {text!r} (ids look like blocks.0.mlp.neuron:12)", dialogs.STATUS_ERROR_MS)
            return
        if hit not in s.graph.index:
            s.set_view("model")
        s.select(hit)  # the view brings it into sight if it is off screen
        self._focus_graph()
        self._status(f"Found {hit}. Press A to toggle its ablation.")
