"""Focus and compare in the window: the Focus toolbar (a second row under the graph toolbar), View >
Focus on selection and Circuits > Compare with circuit… / Stop comparing.

* **Focus on selection** (Shift+F; the toolbar's *Focus* button) with its **hops** spin box (0-20,
  default 1): every node outside the selected node's neighbourhood is dimmed, with the weights and q-k
  links between dimmed nodes; **min degree** (0: off) dims the nodes with fewer weights shown at the
  |w| threshold. Both compose (engine/scene/focus.py; :mod:`app.model.focus` keeps the emphasis).
  Ablation clicks work as ever: focus only changes what is bright.
* **Compare with circuit…** picks another circuit of the run for this task (the other ablation, an
  imported one, a formation step: :func:`engine.scene.diff.circuit_names`) or any circuit file; the
  circuit view then shows both (app/graph/focus_style.py colours them by side). **Stop comparing**
  (the toolbar's ✕) goes back to the circuit alone. Reloading the same circuit (more pairs, a new
  store) keeps the comparison; another task or run ends it.

Every setting is in the session file (``focus``, ``focus_hops``, ``min_degree``, ``diff``:
:mod:`app.window.session`). Knows nothing about threads; the partner is read in the GUI thread (a
small JSON file; torch is loaded by then, with the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLabel, QMainWindow, QMenu, QSpinBox, QToolBar, QWidget

from app.model.focus import EmphasisFollower
from engine.errors import UserError
from engine.scene.focus import MAX_HOPS

OTHER_FILE = "Another circuit file…"
MAX_DEGREE_SPIN = 999


def ask_partner(parent: QWidget, names: list[str]) -> str | None:
    """The circuit to compare with, picked from ``names`` (tests replace this)."""
    name, ok = QInputDialog.getItem(parent, "Compare with circuit", "Compare the circuit on screen with:", names,
                                    0, False)
    return name if ok and name else None


def ask_circuit_file(parent: QWidget, start_dir: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Compare with circuit file", start_dir, "Circuit files (*.json)")
    return path or None


class FocusBar(QToolBar):
    """Focus, hops, min degree, Compare… and ✕ (stop comparing); follows the state without echo."""

    def __init__(self, state, compare: Callable[[], None], stop: Callable[[], None],
                 parent: QWidget | None = None) -> None:
        super().__init__("Focus", parent)
        self.setObjectName("focusToolbar")
        self.setMovable(False)
        self._state = state
        self.focus_action = QAction("Focus on selection", self, checkable=True)
        self.focus_action.setShortcut(QKeySequence("Shift+F"))
        self.focus_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.focus_action.setToolTip("Dim every node outside the selected node's neighbourhood (Shift+F)")
        self.focus_action.setIconText("Focus")
        self.focus_action.toggled.connect(lambda on: self._set(on=on))
        self.addAction(self.focus_action)
        self.hops = self._spin("focusHops", 0, MAX_HOPS, 1, " hops ", "The neighbourhood's radius: weights, q-k and "
                               "residual links walked from the selected node (0: the node alone)")
        self.hops.valueChanged.connect(lambda k: self._set(hops=k))
        self.addSeparator()
        self.min_degree = self._spin("minDegree", 0, MAX_DEGREE_SPIN, 0, " min degree ", "Dim nodes with fewer "
                                     "weights (in + out) shown at the |w| threshold; 0: off")
        self.min_degree.valueChanged.connect(lambda n: self._set(min_degree=n))
        self.addSeparator()
        self.compare_action = QAction("Compare with circuit…", self)
        self.compare_action.setIconText("Compare…")
        self.compare_action.setToolTip("Show another circuit of this run and task with this one: nodes and weights "
                                       "only in A, only in B, in both")
        self.compare_action.triggered.connect(compare)
        self.stop_action = QAction("Stop comparing", self)
        self.stop_action.setIconText("✕")
        self.stop_action.setToolTip("Back to the circuit alone")
        self.stop_action.triggered.connect(stop)
        self.addAction(self.compare_action)
        self.diff_label = QLabel("")
        self.addWidget(self.diff_label)
        self.addAction(self.stop_action)
        state.focusChanged.connect(self._on_focus)
        state.diffChanged.connect(self._on_diff)
        state.bundleChanged.connect(self._on_diff)
        self._on_focus(state.focus)
        self._on_diff()

    def add_leading(self, label: str, widget: QWidget) -> None:
        """Put ``label`` and ``widget`` (a view option owned elsewhere, e.g. the graph toolbar's edges
        choice) at the start of this row, before Focus."""
        first = self.actions()[0] if self.actions() else None
        self.insertWidget(first, QLabel(f" {label} "))
        self.insertWidget(first, widget)
        self.insertSeparator(first)

    def _spin(self, name: str, lo: int, hi: int, value: int, label: str, tip: str) -> QSpinBox:
        self.addWidget(QLabel(label))
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(lo, hi)
        spin.setValue(value)
        spin.setToolTip(tip)
        self.addWidget(spin)
        return spin

    def _set(self, **change) -> None:
        self._state.set_focus(replace(self._state.focus, **change))

    @Slot(object)
    def _on_focus(self, focus) -> None:
        for widget in (self.focus_action, self.hops, self.min_degree):
            widget.blockSignals(True)
        self.focus_action.setChecked(focus.on)
        self.hops.setValue(focus.hops)
        self.min_degree.setValue(focus.min_degree)
        for widget in (self.focus_action, self.hops, self.min_degree):
            widget.blockSignals(False)

    @Slot()
    def _on_diff(self, *args) -> None:
        s = self._state
        self.compare_action.setEnabled(s.bundle is not None and s.bundle.circuit is not None)
        self.stop_action.setEnabled(s.diff is not None)
        self.diff_label.setText(f" vs {s.diff.diff.b} " if s.diff is not None else "")


@dataclass
class DiffKeeper:
    """The comparison on screen, kept over a reload of the same circuit (see the module docstring)."""

    key: tuple | None = None  # (run, circuit file) the partner belongs to
    partner: str | None = None


class FocusTools(QObject):
    """The Focus toolbar, its menu entries and the comparison's commands (see the module docstring)."""

    def __init__(self, window: QMainWindow, state, report_error: Callable[[str, str], None]) -> None:
        super().__init__(window)
        self._window, self._state, self._report = window, state, report_error
        self.follower = EmphasisFollower(state, self)
        self.bar = FocusBar(state, self.ask_and_compare, self.stop, window)
        self._kept = DiffKeeper()
        state.bundleChanged.connect(self._on_bundle)
        state.diffChanged.connect(self._on_diff)

    def compare_with(self, ref: str) -> bool:
        """Compare the circuit on screen with circuit ``ref`` (a name or file); a dialog if it cannot be."""
        from engine.scene.diff import bundle_partner

        s = self._state
        try:
            diff = bundle_partner(s.bundle, ref)
        except UserError as exc:
            self._report("Cannot compare circuits", f"{exc}.")
            return False
        s.set_view("circuit")
        s.set_diff(diff)
        return True

    @Slot()
    def ask_and_compare(self) -> None:
        """Circuits > Compare with circuit…: this task's other circuits, or a file."""
        from engine.scene.diff import circuit_names

        b = self._state.bundle
        if b is None or b.circuit is None:
            self._report("Nothing to compare", "Open a run with a circuit for this task first.")
            return
        here = Path(b.circuit_path).resolve()
        names = [n for n, p in circuit_names(b.run_path, b.task.name) if Path(p).resolve() != here]
        choice = ask_partner(self._window, names + [OTHER_FILE])
        if choice == OTHER_FILE:
            choice = ask_circuit_file(self._window, str(Path(b.circuit_path).parent))
        if choice:
            self.compare_with(choice)

    @Slot()
    def stop(self) -> None:
        """Back to the circuit alone."""
        self._state.set_diff(None)

    @Slot(object)
    def _on_diff(self, diff) -> None:
        self._kept = DiffKeeper(_key(self._state.bundle), diff.partner) if diff is not None else DiffKeeper()

    @Slot(object)
    def _on_bundle(self, bundle) -> None:
        """The same circuit loaded again (more pairs, a new store): compare it with the same partner
        (a session applied next decides for itself)."""
        from engine.scene.diff import bundle_partner

        if bundle is None or self._kept.partner is None or self._kept.key != _key(bundle):
            return
        try:
            self._state.set_diff(bundle_partner(bundle, self._kept.partner))
        except UserError:
            self._state.set_diff(None)  # the partner is gone: the circuit alone

def _key(bundle) -> tuple | None:
    return None if bundle is None or bundle.circuit_path is None else (str(bundle.run_path), str(bundle.circuit_path))


def install(window: QMainWindow, state, report_error: Callable[[str, str], None], view_menu: QMenu) -> FocusTools:
    """Add the Focus toolbar (its own row), View > Focus on selection and the Circuits menu's Compare
    entries to ``window``."""
    tools = FocusTools(window, state, report_error)
    window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools.bar)
    window.addAction(tools.bar.focus_action)
    view_menu.addAction(tools.bar.focus_action)
    view_menu.addAction(tools.bar.toggleViewAction())
    circuits = next((a.menu() for a in window.menuBar().actions() if a.text() == "&Circuits"), None)
    if circuits is not None:
        circuits.addSeparator()
        circuits.addAction(tools.bar.compare_action)
        circuits.addAction(tools.bar.stop_action)
    return tools
