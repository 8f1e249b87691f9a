"""Attribution mode (issue 18, item 4): edges coloured and sized by weight x source signal on the
selected pair and nodes by their estimated effect on its logit difference, on A, B or A - B; it follows
ablations and the pair, goes back to weights cleanly, and is kept in sessions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.graph.attribution import SOURCE
from app.window.session import capture
from conftest import LOAD_TIMEOUT_MS
from engine.scene.attribution import edge_attribution, shown

TASK = "single_double_quote"


@pytest.fixture
def demo_window(open_window, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))
    return open_window("demo", task=TASK)


def _wait_heat(qtbot, win, trigger, check=lambda h: True):
    with qtbot.waitSignal(win.state.nodeHeatChanged, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda h: h is not None and h.source == SOURCE and check(h)):
        trigger()
    return win.state.node_heat


def _drawn(view) -> np.ndarray:
    """The values the edge layer draws, in graph edge order (NaN: not drawn)."""
    out = np.full(view.graph.n_edges, np.nan)
    out[view.edges.ids] = view.edges.weight
    return out


def test_edges_and_nodes_follow_the_attribution_on_the_pair(qtbot, demo_window, errors) -> None:
    win = demo_window
    s, view, bar = win.state, win.view, win.toolbar
    weights = _drawn(view)
    np.testing.assert_allclose(weights, view.graph.weight)
    heat = _wait_heat(qtbot, win, lambda: bar.edge_combo.setCurrentText("attribution A"))
    assert (s.edge_mode, s.side) == ("attribution", "A")
    tr = s.current_trace().trace
    att = edge_attribution(view.graph, tr)
    drawn = _drawn(view)
    carries = att[0] != 0
    np.testing.assert_allclose(drawn[carries], att[0][carries], rtol=1e-6)
    assert np.isnan(drawn[~carries]).all()  # no signal on this pair: not drawn
    for node in view.graph.ids:  # nodes: the estimated effect of ablating each on A's logit diff
        assert heat.values[node] == pytest.approx(float(tr.effect(node)[0]), abs=1e-6)
    assert "+ attribution" in [label.text for _s, label in view.legend.items]
    assert "attribution on pair 0 (prompt A)" in view.header.text()
    # A - B, another pair: both recomputed.
    heat = _wait_heat(qtbot, win, lambda: bar.edge_combo.setCurrentText("attribution A−B"),
                      lambda h: "A − B" in h.title)
    diff = shown(att, "A-B")
    np.testing.assert_allclose(_drawn(view)[diff != 0], diff[diff != 0], rtol=1e-5, atol=1e-7)
    _wait_heat(qtbot, win, lambda: s.set_pair(2), lambda h: s.current_trace() is not None)
    assert s.current_trace().request.pair == 2
    assert capture(win).edges == "attribution" and capture(win).side == "A-B"
    # Back to weights: the overlay goes, the weights come back.
    bar.edge_combo.setCurrentText("weight")
    assert s.node_heat is None and s.edge_mode == "weight"
    np.testing.assert_allclose(_drawn(view), view.graph.weight)
    assert "+ weight" in [label.text for _s, label in view.legend.items]
    assert errors == []


def test_an_ablated_node_has_no_effect_left_and_the_attributions_move(qtbot, demo_window, errors) -> None:
    win = demo_window
    s = win.state
    _wait_heat(qtbot, win, lambda: s.set_edge_mode("attribution", "A"))
    before = _drawn(win.view).copy()
    node = "blocks.1.attn.v:99"
    heat = _wait_heat(qtbot, win, lambda: s.toggle_nodes([node]),
                      lambda h: node in s.current_trace().request.nodes)
    assert abs(heat.values[node]) < 1e-6  # already ablated: nothing left to estimate
    after = _drawn(win.view)
    both = ~np.isnan(before) & ~np.isnan(after)
    assert not np.allclose(before[both], after[both])  # v:99 carried signal: its weights changed
    assert errors == []


def test_a_session_restores_the_attribution_mode(qtbot, demo_window, tmp_path: Path, monkeypatch, errors) -> None:
    import json

    from app.widgets import dialogs

    win = demo_window
    path = tmp_path / "attr.json"
    path.write_text(json.dumps({"kind": "session", "run": "demo", "task": TASK, "edges": "attribution", "side": "B",
                                "pair": 1}))
    monkeypatch.setattr(dialogs, "ask_open_session", lambda parent, start="": path)
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.menu_actions.open_session.trigger()
    s = win.state
    assert (s.edge_mode, s.side, s.pair) == ("attribution", "B", 1)
    assert win.toolbar.edge_combo.currentText() == "attribution B"
    qtbot.waitUntil(lambda: s.node_heat is not None and s.node_heat.source == SOURCE, timeout=LOAD_TIMEOUT_MS)
    assert "prompt B" in s.node_heat.title and s.current_trace().request.pair == 1
    assert errors == []


def test_exports_carry_weights_and_attributions_and_the_headless_export_agrees(qtbot, demo_window, tmp_path: Path,
                                                                              errors) -> None:
    """Every export has both: each weight's attribution on A and B, each node's estimated effect; in
    attribution mode the picture draws the attribution. The headless export of the saved session has
    the same numbers."""
    import json

    from app.export.command import main as app_export
    from app.window import export
    from app.window import session as session_view
    from engine.scene.session import write_session

    win = demo_window
    s = win.state
    s.set_pair(3)
    [js] = export.export_view(win, "json", tmp_path / "w.json")  # nothing selected, weight mode: traced anyway
    doc = json.loads(js.read_text())
    assert doc["attribution"]["pair"] == 3 and doc["attribution"]["edges_show"] == "weight"
    tr = s.trace.trace
    att = edge_attribution(win.view.graph, tr)
    np.testing.assert_allclose([e["attribution_a"] for e in doc["edges"]], att[0], rtol=1e-6)
    np.testing.assert_allclose([e["attribution_b"] for e in doc["edges"]], att[1], rtol=1e-6)
    by_id = {n["id"]: n for n in doc["nodes"]}
    assert by_id["blocks.1.attn.v:99"]["effect_a"] == pytest.approx(float(tr.effect("blocks.1.attn.v:99")[0]))

    _wait_heat(qtbot, win, lambda: s.set_edge_mode("attribution", "A"))
    [svg] = export.export_view(win, "svg", tmp_path / "w.svg")
    text = svg.read_text()
    assert "+ attribution" in text and "estimated effect" in text
    session = write_session(tmp_path / "s.json", session_view.capture(win))
    assert app_export(["demo", "--session", str(session), "--format", "json", "--out", str(tmp_path / "h.json")]) == 0
    head = json.loads((tmp_path / "h.json").read_text())
    assert head["attribution"]["edges_show"] == "attribution" and head["pair"] == 3
    np.testing.assert_allclose([e["attribution_a"] for e in head["edges"]], att[0], rtol=1e-5, atol=1e-7)
    assert errors == []


def test_in_weight_mode_a_new_trace_leaves_the_edges_alone(qtbot, demo_window, errors) -> None:
    """Redrawing every edge per trace cost seconds on a 393k-weight model: weight mode never does."""
    win = demo_window
    redraws = []
    real = win.view.edges.set_edges
    win.view.edges.set_edges = lambda *a, **k: redraws.append(1) or real(*a, **k)
    with qtbot.waitSignal(win.state.traceChanged, timeout=LOAD_TIMEOUT_MS):
        win.state.select("blocks.1.attn.v:99")
    with qtbot.waitSignal(win.state.traceChanged, timeout=LOAD_TIMEOUT_MS):
        win.state.toggle_nodes(["blocks.1.attn.k:107"])
    assert redraws == []
    _wait_heat(qtbot, win, lambda: win.state.set_edge_mode("attribution", "A"))
    assert redraws  # attribution mode draws them
    n = len(redraws)
    win.state.set_edge_mode("weight")
    assert len(redraws) == n + 1  # and back to weights once
    assert errors == []
