"""The node inspector on a real tiny activation store, and recording one from the button."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.widgets import dialogs

from app.window import controller as window_controller
from app.window.main_window import MainWindow

LOAD_TIMEOUT_MS = 120_000



def test_inspector_fills_from_a_real_tiny_store(qtbot, open_window, tiny_run_with_store: Path, errors) -> None:
    win = open_window(tiny_run_with_store)
    assert win.store is not None
    node = "blocks.0.mlp.neuron:5"
    win.state.select(node)
    insp = win.inspector
    assert node in insp.title.text()
    assert insp.example_stack.currentIndex() == 0  # examples, not the "record" page
    html = insp.examples.toHtml()
    assert "Top" in html and "Bottom" in html and "background-color" in html
    top = win.store.top_examples(node, k=1, window=3)[0]
    assert top.tokens[top.center].strip() == "" or top.tokens[top.center] in insp.examples.toPlainText()
    assert insp.in_table.rowCount() > 0 and insp.out_table.rowCount() > 0
    assert "recorded activations" in insp.hist_note.text()
    assert len(insp.hist_plot.getPlotItem().items) >= 1 and len(insp.task_plot.getPlotItem().items) >= 4
    # Editable label: saved to the derived folder and shown under the node in the circuit view.
    insp.label_edit.setText("quote detector")
    insp.label_edit.editingFinished.emit()
    assert win.state.labels[node] == "quote detector"
    assert (win.state.bundle.derived / "labels.json").read_text().count("quote detector") == 1
    # Clicking an edge row jumps to that node.
    other = insp.in_table.item(0, 0).text()
    insp.in_table.cellClicked.emit(0, 0)
    assert win.state.selected == other and other in insp.title.text()
    # Resample ablation is allowed with a store.
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=LOAD_TIMEOUT_MS):
        win.toolbar.mode_combo.setCurrentText("resample")
    assert win.state.mode == "resample"
    assert errors == []


def test_examples_fit_the_panel_with_the_peak_centred_and_marked(qtbot, open_window, tiny_run_with_store: Path,
                                                                 errors) -> None:
    from app.panels.inspector import N_EXAMPLES, WINDOW
    from app.panels.token_html import PREFIX_CHARS, shown

    win = open_window(tiny_run_with_store)
    insp = win.inspector
    node = "blocks.0.mlp.neuron:5"
    for width in (900, 420):  # a wide and a narrow panel: redrawn on resize
        win.resizeDocks([win.inspector_dock], [width], Qt.Orientation.Horizontal)
        win.state.select(node if win.state.selected != node else None)
        win.state.select(node)
        qtbot.waitUntil(lambda: insp.example_chars() == insp._chars, timeout=5000)
        chars = insp.example_chars()
        top = win.store.top_examples(node, k=N_EXAMPLES, window=WINDOW)
        lines = [ln for ln in insp.examples.toPlainText().splitlines() if "│" in ln][:len(top)]
        col = PREFIX_CHARS
        for ex, line in zip(top, lines):
            peak = shown(ex.tokens[ex.center])
            at = col + max(0, (chars - len(peak)) // 2)
            assert len(line) <= col + chars, (width, line)  # nothing runs off the edge
            assert line[at:at + len(peak)] == peak, (width, line)  # the peak in the middle column
        assert insp.examples.toHtml().count("text-decoration: underline") >= len(top)  # every peak marked
    assert errors == []


def test_weights_tab_marks_the_circuits_weights(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    b, insp = win.state.bundle, win.inspector
    cg = b.circuit_graph
    node = max(cg.ids, key=lambda n: int((cg.dst == cg.index[n]).sum()))  # the most circuit weights in
    win.state.select(node)
    expected = {cg.ids[cg.src[e]] for e in range(cg.n_edges) if cg.ids[cg.dst[e]] == node}
    marked = {insp.in_table.item(r, 0).text() for r in range(insp.in_table.rowCount())
              if insp.in_table.item(r, 1).text().startswith("●")}
    assert expected and marked == expected
    assert all(insp.in_table.item(r, 0).font().bold() == (insp.in_table.item(r, 0).text() in expected)
               for r in range(insp.in_table.rowCount()))
    assert f"({len(expected)} in," in insp.weights_note.text()
    insp.in_table.cellClicked.emit(0, 0)  # a marked row still jumps to its node
    assert win.state.selected == insp.title.text().split("<b>")[1].split("</b>")[0]
    assert errors == []


def test_record_button_fills_the_panel_when_ready(qtbot, open_window, fresh_tiny_run: Path, errors, monkeypatch) -> None:
    monkeypatch.setattr(window_controller, "RECORD_TOKENS", 2000)
    win = open_window(fresh_tiny_run)
    assert win.store is None
    win.state.select("blocks.1.attn.v:1")
    insp = win.inspector
    assert insp.example_stack.currentIndex() == 1 and insp.record_button.isEnabled()
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(insp.record_button, Qt.MouseButton.LeftButton)
        assert not insp.record_button.isEnabled()  # while recording
    assert blocker.args[0].status == "done", blocker.args[0]
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        pass  # the run reloads with its new store (resample ablation needs it); the view comes back
    assert win.state.selected == "blocks.1.attn.v:1" and win.state.bundle.resample
    assert win.store is not None and insp.example_stack.currentIndex() == 0
    assert "Top" in insp.examples.toHtml()
    log = win.log_panel.text.toPlainText()
    assert "record store: done" in log and "2,000 pretraining tokens" in log
    assert errors == []


def test_the_record_button_keeps_a_paper_scale_store_to_its_byte_budget() -> None:
    """The button records 50,000 tokens where they fit the budget (the demo: ~0.3 GB); a csp_yolo1-sized
    model (91,136 nodes, 1024-token windows) records the whole windows that fit, not 9 GB; a model too
    large for even one window still records one."""
    from app.window.controller import RECORD_BYTES, RECORD_TOKENS, record_tokens

    assert record_tokens(2_944, 128) == RECORD_TOKENS
    n = record_tokens(91_136, 1024)
    assert n % 1024 == 0 and n * (2 * 91_136 + 4) <= RECORD_BYTES < (n + 1024) * (2 * 91_136 + 4)
    assert record_tokens(10**9, 1024) == 1024
