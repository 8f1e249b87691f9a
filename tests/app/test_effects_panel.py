"""The Node effects dock (issue 18, item 5) on the bundled demo's quote circuit: ranking fills a sortable
table (exact, qualified), a row click selects and centres its node, the colour overlay follows the
checkbox and the state, a mode change marks the table stale, another bundle clears it, cancelling
leaves nothing, and sessions keep the overlay (older files still load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.window import session as session_view
from conftest import LOAD_TIMEOUT_MS
from engine.scene.session import SessionError, read_session, write_session

TASK = "single_double_quote"


@pytest.fixture
def demo_window(open_window, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))
    return open_window("demo", task=TASK)


def _rank(qtbot, win, start=None):
    """Press Rank (or run ``start``) and wait for the job's outcome."""
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as blocker:
        (start or win.tools.effects_panel.job.start_button.click)()
    return blocker.args[0]


def test_ranking_the_quote_circuit_fills_a_qualified_table_and_a_row_selects_its_node(qtbot, demo_window, errors):
    win = demo_window
    panel, dock = win.tools.effects_panel, win.tools.effects_dock
    assert panel.job.start_button.text() == "Rank circuit nodes (exact)" and panel.table.rowCount() == 0
    outcome = _rank(qtbot, win)
    assert outcome.status == "done" and errors == []
    circuit = {str(n) for n in win.state.bundle.circuit.nodes}
    nodes = panel.nodes()
    assert set(nodes) == circuit and len(nodes) == len(circuit) == 21
    assert nodes[0].startswith("blocks.1.attn.v:")  # the quote type's value carries the answer
    text = panel.summary.text()
    assert "Exact" in text and "24 held-out pairs" in text and "mean ablation" in text and "circuit alone" in text
    effects = [abs(r["delta_loss"]) for r in win.tools.effects_controller.result["rows"]]
    assert effects == sorted(effects, reverse=True) and effects[0] > 0
    panel.table.sortByColumn(4, Qt.SortOrder.AscendingOrder)  # by signed change of loss, numerically
    shown = [float(panel.table.item(i, 4).data(Qt.ItemDataRole.UserRole)) for i in range(panel.table.rowCount())]
    assert shown == sorted(shown)
    dock.show()
    dock.raise_()
    win.resizeDocks([dock], [320], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: panel.table.isVisible())
    item = panel.table.item(0, 1)
    rect = panel.table.visualItemRect(item)
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert win.state.selected == item.text()
    x, y = win.view.graph.pos[win.view.graph.index[item.text()]]
    (x0, x1), (y0, y1) = win.view.vb.viewRange()
    assert abs((x0 + x1) / 2 - x) < 1e-6 * max(1.0, abs(x)) + 1e-3 and abs((y0 + y1) / 2 - y) < 1e-3
    assert win.state.ablation.nodes == frozenset()  # selecting from the table ablates nothing


def test_the_overlay_follows_the_checkbox_a_mode_change_marks_it_stale_and_a_new_bundle_clears_it(
        qtbot, demo_window, errors):
    win = demo_window
    panel, state = win.tools.effects_panel, win.state
    assert state.overlay is None and state.node_heat is None
    outcome = _rank(qtbot, win, lambda: panel.overlay.setChecked(True))  # on without a ranking: it ranks
    assert outcome.status == "done" and state.overlay == "effects"
    heat = state.node_heat
    rows = win.tools.effects_controller.result["rows"]
    assert heat is not None and heat.source == "effects" and heat.signed
    assert heat.values == {r["node"]: r["delta_loss"] for r in rows} and "mean" in heat.title
    panel.overlay.setChecked(False)
    assert state.overlay is None and state.node_heat is None
    panel.overlay.setChecked(True)  # the ranking is there: the colours come back without a job
    assert win.jobs.running is None and state.node_heat is not None
    state.set_mode("zero")
    assert "Stale" in panel.summary.text() and "zero" in panel.summary.text()
    assert "stale" in state.node_heat.title and panel.table.rowCount() == len(rows)
    state.set_mode("resample")  # one value per node is needed: Rank is off, and says why
    assert not panel.job.start_button.isEnabled() and "resample" in panel.job.start_button.toolTip()
    state.set_mode("mean")
    assert "Stale" not in panel.summary.text() and "stale" not in state.node_heat.title
    state.set_bundle(state.bundle)  # another run, task or circuit: cleared (and, with the overlay on, ranked)
    assert panel.table.rowCount() == 0 and state.node_heat is None
    assert win.jobs.running == "rank"
    panel.overlay.setChecked(False)
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS):
        pass
    assert state.node_heat is None and panel.table.rowCount() == 21 and errors == []


def test_the_whole_model_view_ranks_every_node_by_estimate_and_cancel_leaves_nothing(qtbot, demo_window, errors):
    win = demo_window
    panel = win.tools.effects_panel
    win.state.set_view("model")
    assert panel.job.start_button.text() == "Rank all nodes (estimate)"
    outcome = _rank(qtbot, win, lambda: (panel.job.start_button.click(), win.tools.effects_controller.cancel()))
    assert outcome.status == "cancelled" and panel.table.rowCount() == 0
    outcome = _rank(qtbot, win)
    assert outcome.status == "done" and errors == []
    r = win.tools.effects_controller.result
    assert (r["kind"], r["n_checked"]) == ("estimate", 50) and r["n_nodes"] == win.state.bundle.model_graph.n_nodes
    assert panel.table.rowCount() == 500 and not panel.table.isColumnHidden(3)
    assert "Estimate" in panel.summary.text() and "Spearman" in panel.summary.text() and "first 500" in panel.summary.text()
    win.state.set_view("circuit")
    node = next(n for n in panel.nodes() if n not in win.state.graph.index)  # not in the circuit
    panel.nodeClicked.emit(node)
    assert win.state.view == "model" and win.state.selected == node


def test_a_session_keeps_the_overlay_and_older_files_still_load(qtbot, demo_window, open_window, tmp_path, errors):
    win = demo_window
    _rank(qtbot, win, lambda: win.tools.effects_panel.overlay.setChecked(True))
    path = write_session(tmp_path / "s.json", session_view.capture(win))
    assert json.loads(path.read_text())["overlay"] == "effects"
    session = read_session(path)
    assert session.overlay == "effects"
    other = open_window("demo", task=TASK)
    assert other.state.overlay is None and not other.tools.effects_panel.overlay.isChecked()
    with qtbot.waitSignal(other.jobs.finished, timeout=LOAD_TIMEOUT_MS):
        with qtbot.waitSignal(other.ready, timeout=LOAD_TIMEOUT_MS):
            assert other.open_session(session)
    assert other.state.overlay == "effects" and other.tools.effects_panel.overlay.isChecked()
    assert other.state.node_heat is not None and other.state.node_heat.values == win.state.node_heat.values
    data = json.loads(path.read_text())
    del data["overlay"]  # a file from before the key
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert read_session(tmp_path / "old.json").overlay is None
    data["overlay"] = "glow"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(SessionError, match="overlay"):
        read_session(tmp_path / "bad.json")
    dropped = read_session(tmp_path / "bad.json", drop_invalid=True)
    assert dropped.overlay is None and any("overlay" in d for d in dropped.dropped)
