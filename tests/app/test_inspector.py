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
    assert "record store: done" in win.log_panel.text.toPlainText()
    assert errors == []
