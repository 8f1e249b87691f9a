"""The emphasis set follows the focus settings: :class:`EmphasisFollower` recomputes
``AppState.emphasis`` (the nodes drawn bright) from the graph on screen, the selected node, the
state's :class:`engine.scene.focus.FocusSettings` (focus on the selection with its hops, the minimum
degree) and the |w| threshold, whenever one of them changes (engine/scene/focus.py says what the
neighbourhood and the degree count). The graph view then dims the rest (``emphasisChanged``). Nothing
here is on the click path's way to the metrics (docs/architecture.md, "The click path"): ablating
does not change the emphasis, and selecting recomputes it only while the focus is on; a selection
that comes with an ablation (a plain click) waits for that click's metrics (at most ``WAIT_MS``), so
restyling never competes with the evaluation.

Knows nothing about widgets or the engine's computations.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Slot

from engine.scene.focus import emphasis

WAIT_MS = 300  # the longest a click's restyle waits for its metrics


class EmphasisFollower(QObject):
    """Keeps ``state.emphasis`` equal to what the focus settings select (see the module docstring)."""

    def __init__(self, state, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = state
        for signal in (state.bundleChanged, state.viewChanged, state.diffChanged, state.focusChanged,
                       state.thresholdChanged):
            signal.connect(self.update)
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.timeout.connect(self.update)
        self._evaluating = False  # an ablation changed and its metrics have not arrived yet
        state.selectionChanged.connect(self._on_selection)
        state.ablationChanged.connect(self._on_ablation)
        state.evaluationChanged.connect(self._on_evaluation)

    @Slot()
    def update(self, *args) -> None:
        self._later.stop()
        s = self._state
        graph = s.graph
        s.set_emphasis(None if graph is None else emphasis(graph, s.selected, s.focus, s.threshold))

    @Slot(object)
    def _on_selection(self, node) -> None:
        if self._state.focus.on:  # otherwise the selection does not change what is bright
            self._later.start(WAIT_MS if self._evaluating else 0)

    @Slot(object)
    def _on_ablation(self, *args) -> None:
        self._evaluating = True

    @Slot(object)
    def _on_evaluation(self, *args) -> None:
        self._evaluating = False
        if self._later.isActive():
            self._later.start(0)
