"""The window on a real tiny run (pytest-qt, offscreen): clicks ablate nodes and the metrics follow.

Every wait is on a signal or a condition (qtbot.waitSignal / waitUntil), never a sleep.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from app.widgets import dialogs
from app.window.main_window import MainWindow

LOAD_TIMEOUT_MS = 120_000

EVAL_TIMEOUT_MS = 60_000


def click(qtbot, win: MainWindow, node: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    pos = win.view.node_scene_pos(node)
    qtbot.mouseClick(win.view.widget.viewport(), Qt.MouseButton.LeftButton, modifier, QPoint(pos.x(), pos.y()))


def now_loss_text(win: MainWindow) -> str:
    item = win.metrics.table.item(2, 0)
    return item.text() if item is not None else ""


def influential_node(win: MainWindow) -> str:
    """A circuit node whose value differs between the task's two sides (its ablation matters)."""
    b = win.state.bundle
    graph = win.state.graph
    best, score = graph.ids[0], -1.0
    for node in graph.ids:
        site, _, idx = node.rpartition(":")
        v = b.task_view.node_values[site][:, int(idx)]
        s = float(np.abs(v[0::2] - v[1::2]).mean())
        if s > score:
            best, score = node, s
    return best


def test_click_on_node_toggles_ablation_and_metrics_change(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    assert win.state.view == "circuit" and win.state.bundle.circuit is not None
    # Random weights: the hand-made circuit alone is flat (loss ~ln 2), so ablate on top of the
    # full model, where every node on a path to the logits matters.
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        win.toolbar.baseline_combo.setCurrentText("full")
    qtbot.waitUntil(lambda: win.state.evaluation.request.baseline == "full", timeout=EVAL_TIMEOUT_MS)
    before_loss = win.state.evaluation.result.loss
    before_bars = np.asarray(win.metrics.now_bars.opts["height"]).copy()
    node = influential_node(win)

    with qtbot.waitSignal(win.state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        click(qtbot, win, node)
    assert node in win.state.ablation.nodes
    assert win.state.selected == node  # a plain click also inspects the node
    assert len(win.view.ablated.data) == 1  # drawn hollow + crossed
    qtbot.waitUntil(lambda: win.state.evaluation.request.nodes == (node,), timeout=EVAL_TIMEOUT_MS)
    after = win.state.evaluation.result.loss
    assert after != before_loss
    # The panel shows the new numbers: the table (4 decimals) and the per-pair bars.
    assert now_loss_text(win) == f"{after:.4f}"
    assert not np.array_equal(np.asarray(win.metrics.now_bars.opts["height"]), before_bars)
    assert "ablate" in win.metrics.history.item(win.metrics.history.count() - 1).text()

    # Hovering shows id, mean, the selected pair's values and the degree.
    tip = win.view._tip(0, 0, win.state.graph.index[node])
    for part in (node, "mean activation", "pair 0: A", "weights in view", "ABLATED"):
        assert part in tip
    assert win.menu_actions.undo.isEnabled() and not win.menu_actions.redo.isEnabled()

    with qtbot.waitSignal(win.state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        click(qtbot, win, node)  # a second click restores it
    assert node not in win.state.ablation.nodes
    qtbot.waitUntil(lambda: win.state.evaluation.request.nodes == (), timeout=EVAL_TIMEOUT_MS)
    assert win.state.evaluation.result.loss == pytest.approx(before_loss)
    assert errors == []


def test_200_rapid_clicks_end_with_the_last_state_shown(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    nodes = list(win.state.graph.ids[:7])
    for i in range(200):
        click(qtbot, win, nodes[(i * 3) % len(nodes)])
        if i % 5 == 0:
            QApplication.processEvents()  # let some requests reach the worker mid-burst
    final = tuple(sorted(win.state.ablation.nodes))
    qtbot.waitUntil(lambda: win.state.evaluation is not None and win.state.evaluation.request.nodes == final,
                    timeout=EVAL_TIMEOUT_MS)
    # The shown metrics are those of the last state; the overlay matches it too.
    assert win.metrics.table.item(2, 0).text() == f"{win.state.evaluation.result.loss:.4f}"
    assert len(win.view.ablated.data) == len(final)
    assert win.service.dropped >= 0 and win.isVisible()
    # Undo walks back one click at a time; Esc-style clear returns to the baseline.
    win.state.undo()
    assert tuple(sorted(win.state.ablation.nodes)) != final or final == ()
    win.state.redo()
    assert tuple(sorted(win.state.ablation.nodes)) == final
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        win.menu_actions.clear.trigger()
    assert win.state.ablation.nodes == frozenset()
    assert errors == []


def test_shift_click_rubber_band_edge_click_and_modes(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    graph = win.state.graph
    a, b = graph.ids[0], graph.ids[3]
    click(qtbot, win, a, Qt.KeyboardModifier.ShiftModifier)  # toggles, does not change the selection
    assert a in win.state.ablation.nodes and win.state.selected is None
    click(qtbot, win, b, Qt.KeyboardModifier.ControlModifier)  # inspects only
    assert win.state.selected == b and b not in win.state.ablation.nodes

    # Rubber band over the bottom residual row ablates every node in it, as one undo step.
    y0 = graph.pos[:, 1].min()
    row = [n for n, p in zip(graph.ids, graph.pos) if p[1] == y0]
    from PySide6.QtCore import QRectF

    win.view.vb.sigRubberBand.emit(QRectF(-1e3, y0 - 0.2, 2e3, 0.4), Qt.KeyboardModifier.ShiftModifier)
    assert set(row) <= win.state.ablation.nodes
    win.state.undo()
    assert not set(row) - {a} <= win.state.ablation.nodes or set(row) == {a}

    # Clicking on an edge's middle toggles that one weight.
    e = int(np.argmax(np.abs(graph.weight)))
    mid = (graph.pos[graph.src[e]] + graph.pos[graph.dst[e]]) / 2
    from pyqtgraph import Point

    scene = win.view.vb.mapViewToScene(Point(*mid))
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        qtbot.mouseClick(win.view.widget.viewport(), Qt.MouseButton.LeftButton,
                         pos=win.view.widget.mapFromScene(scene))
    assert len(win.state.ablation.edges) == 1
    assert len(win.view.cut_marks.data) == 1

    with qtbot.waitSignal(win.state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        win.toolbar.mode_combo.setCurrentText("zero")
    qtbot.waitUntil(lambda: win.state.evaluation.request.mode == "zero", timeout=EVAL_TIMEOUT_MS)
    # Resample needs a store: a clear dialog, and the mode stays.
    win.toolbar.mode_combo.setCurrentText("resample")
    assert win.state.mode == "zero" and errors and "store" in errors[-1][0]


def test_keyboard_find_toggle_and_whole_model_view(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    node = influential_node(win)
    win.menu_actions.find.trigger()
    assert win.toolbar.find_edit.hasFocus() or win.toolbar.find_edit.isVisible()
    win.toolbar.find_edit.setText(node)
    win.toolbar.find_node()
    assert win.state.selected == node
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        win.menu_actions.toggle.trigger()  # the A shortcut
    assert node in win.state.ablation.nodes

    with qtbot.waitSignal(win.view.drawn, timeout=LOAD_TIMEOUT_MS):
        win.menu_actions.switch_view.trigger()
    assert win.state.view == "model"
    model = win.state.bundle.model_graph
    assert win.view.graph is model and win.view.edges.n_shown == model.n_edges
    win.toolbar.threshold_slider.setValue(90)
    assert 0 < win.view.edges.n_shown < model.n_edges
    assert win.state.threshold > 0
    win.menu_actions.fit.trigger()


def test_run_without_circuit_shows_whole_model_and_hint(qtbot, open_window, tmp_path: Path, errors, tiny_run_factory) -> None:
    run = tiny_run_factory(tmp_path / "nocirc", circuit=False)
    win = open_window(run)
    assert win.state.bundle.circuit is None and win.state.view == "model" and win.state.baseline == "full"
    assert "Prune a task" in win.view.header.text()  # points to Circuits > Prune a task…
    assert not win.toolbar.circuit_view_action.isEnabled()
    assert win.metrics.table.item(1, 0).text() == "—"
    assert errors == []


def test_bad_task_file_and_failed_eval_report_errors_and_keep_running(qtbot, open_window, tiny_run: Path, tmp_path: Path,
                                                                      errors) -> None:
    win = open_window(tiny_run)
    bad = tmp_path / "task.json"
    bad.write_text('{"name": "x", "pairs": []}')
    with qtbot.waitSignal(win.service.setupFailed, timeout=LOAD_TIMEOUT_MS):
        win.load_task(task_file=str(bad))
    assert errors and errors[-1][0] == "Cannot load task"
    assert win.state.bundle.task.name == "single_double_quote"  # the old task stays
    # An ablation the engine refuses (a weight that is exactly 0) is undone with a dialog.
    g = win.state.bundle.model_graph
    zero_edge = "blocks.0.attn.read:0->blocks.0.attn.q:0"
    if zero_edge in {g.edge_id(e) for e in range(g.n_edges)}:
        pytest.skip("that weight happens to be nonzero")
    with qtbot.waitSignal(win.service.evalFailed, timeout=EVAL_TIMEOUT_MS):
        win.state.toggle_edge(zero_edge)
    assert errors[-1][0] == "Cannot evaluate this ablation"
    assert win.state.ablation.edges == frozenset()
    assert win.isVisible()
    from app.workers import priority

    qtbot.waitUntil(lambda: not win.service.eval_busy, timeout=EVAL_TIMEOUT_MS)
    assert not priority.interactive_running()  # neither failure left background drawing held back


def test_closing_stops_the_workers(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    thread = win.service._owner.thread
    raster = win.view.edges._owner.thread
    assert thread.isRunning()
    win.state.toggle_nodes([win.state.graph.ids[0]])  # a request in flight while closing
    win.close()
    assert win.service._owner.thread is None and not thread.isRunning() and not raster.isRunning()


def test_a_click_that_changes_nothing_says_so(qtbot, open_window, tiny_run) -> None:
    """Toggling a node whose ablation moves no logit (here: one that is already ablated by the
    circuit baseline, so ablating it again on top changes nothing) is reported as having no effect."""
    win = open_window(tiny_run)
    b = win.state.bundle
    outside = next(n for n in b.model_graph.ids if n not in b.circuit_graph.index and "write" in n)
    win.state.set_view("model")
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=LOAD_TIMEOUT_MS):
        win.state.toggle_nodes([outside])
    assert "no effect" in win.statusBar().currentMessage()
    assert "(no effect: no logit moved)" in win.log_panel.text.toPlainText()
    inside = next(n for n in b.circuit_graph.ids if "write" in n)
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=LOAD_TIMEOUT_MS):
        win.state.toggle_nodes([inside])
    if win.state.evaluation.result.loss != win.state.history[-2].loss:  # a node that matters is not flagged
        assert "no effect" not in win.statusBar().currentMessage()


def test_the_metrics_state_their_pairs_and_can_use_more(qtbot, open_window, tiny_run) -> None:
    win = open_window(tiny_run)
    m = win.metrics
    assert "on 24 held-out pairs" in m.info.text() and m.pairs_combo.currentData() == 24
    assert m.table.item(1, 3).text().endswith(" pp")  # accuracy deltas are percentage points
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        m.pairs_combo.setCurrentIndex(m.pairs_combo.findData(64))
        m.pairs_combo.activated.emit(m.pairs_combo.currentIndex())
    assert len(win.state.bundle.task_view.pairs) == 64 and "on 64 held-out pairs" in m.info.text()
    assert m.pairs_combo.currentData() == 64


def test_a_click_holds_background_drawing_until_its_result_is_shown(qtbot, open_window, tiny_run, monkeypatch) -> None:
    """From the click until its metrics are on screen the edge raster waits (app/workers/priority.py);
    afterwards nothing is held, also after a burst of clicks."""
    from app.workers import priority

    win = open_window(tiny_run)
    qtbot.waitUntil(lambda: not win.service.eval_busy, timeout=EVAL_TIMEOUT_MS)
    assert not priority.interactive_running()
    seen = []
    win.state.evaluationChanged.connect(lambda *_: seen.append(priority.interactive_running()))
    nodes = list(win.state.graph.ids[:5])
    for node in nodes:
        click(qtbot, win, node)
    assert priority.interactive_running()  # the click's evaluation has not come back yet
    final = tuple(sorted(win.state.ablation.nodes))
    qtbot.waitUntil(lambda: win.state.evaluation.request.nodes == final and not win.service.eval_busy,
                    timeout=EVAL_TIMEOUT_MS)
    assert seen and seen[-1]  # the result is shown while the hold is still in force
    qtbot.waitUntil(lambda: not priority.interactive_running(), timeout=2000)
