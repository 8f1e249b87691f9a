"""Focus and compare in the window (app/window/focus_bar.py, app/model/focus.py, app/graph/focus_style.py):
focus on the selection dims exactly the nodes outside its neighbourhood (and the weights between them),
the degree filter, a diff of two circuits of the tiny run (a second circuit file written by hand) in the
view and its exports, and the session keys (focus, focus_hops, min_degree, diff) saved and restored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.graph.node_style import DIM_ALPHA
from app.widgets import dialogs, theme
from app.window import focus_bar
from engine.scene.focus import A_ONLY, B_ONLY, BOTH, degree_mask, lit_edges, neighbourhood
from engine.scene.session import read_session, write_session

from conftest import LOAD_TIMEOUT_MS, TASK

EVAL_TIMEOUT_MS = 60_000


def alphas(view) -> np.ndarray:
    return np.array([b.color().alpha() for b in view.nodes.data["brush"]])


def bright(view) -> set[str]:
    return {view.graph.ids[i] for i in np.flatnonzero(alphas(view) == 255)}


@pytest.fixture
def two_circuit_run(fresh_tiny_run: Path) -> tuple[Path, dict]:
    """The tiny run with a second circuit of the task, ``zero``: the first node of ``mean`` dropped
    (with its weights) and one node added."""
    folder = fresh_tiny_run / "circuits" / TASK
    mean = json.loads((folder / "mean.json").read_text())
    drop, add = mean["nodes"][0], "blocks.1.mlp.neuron:3"
    assert add not in mean["nodes"]
    zero = dict(mean, name="zero", nodes=[n for n in mean["nodes"] if n != drop] + [add],
                edges=[e for e in mean["edges"] if drop not in e[:2]])
    (folder / "zero.json").write_text(json.dumps(zero))
    return fresh_tiny_run, {"drop": drop, "add": add, "mean": mean, "zero": zero}


def test_focus_dims_all_but_the_neighbourhood_and_clicks_still_ablate(qtbot, open_window, tiny_run: Path,
                                                                       errors) -> None:
    win = open_window(tiny_run)
    state, view, bar = win.state, win.view, win.focus_tools.bar
    g = view.graph
    node = g.ids[int(np.argmax(np.bincount(g.src, minlength=g.n_nodes)))]  # a node with weights out
    state.select(node)
    assert state.emphasis is None and (alphas(view) == 255).all()  # focus off: nothing dimmed
    bar.focus_action.trigger()  # on (Shift+F)
    assert state.focus.on and state.focus.hops == 1
    expected = neighbourhood(g, node, 1)
    assert 1 < expected.sum() < g.n_nodes
    assert bright(view) == {g.ids[i] for i in np.flatnonzero(expected)}
    assert (alphas(view)[~expected] == DIM_ALPHA).all()
    lit, lit_qk = lit_edges(g, expected)
    assert np.array_equal(view.edges.style.lit, lit) and not lit.all()  # weights outside fade
    faint = view.qk_dim.getData()[0]
    assert (0 if faint is None else len(faint)) == 2 * 9 * int((~lit_qk).sum())  # faint q-k arcs (9 segments each)
    bar.hops.setValue(0)
    assert bright(view) == {node}
    bar.hops.setValue(2)
    assert bright(view) == {g.ids[i] for i in np.flatnonzero(neighbourhood(g, node, 2))}
    other = g.ids[int(np.flatnonzero(~neighbourhood(g, node, 2))[0])]  # a dimmed node: still clickable
    pos = view.node_scene_pos(other)
    with qtbot.waitSignal(state.evaluationChanged, timeout=EVAL_TIMEOUT_MS):
        qtbot.mouseClick(view.widget.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(pos.x(), pos.y()))
    assert other in state.ablation.nodes and state.selected == other
    want = {g.ids[i] for i in np.flatnonzero(neighbourhood(g, other, 2))}
    qtbot.waitUntil(lambda: bright(view) == want, timeout=5000)  # the focus follows, once the metrics are in
    bar.focus_action.trigger()  # off
    assert state.emphasis is None and (alphas(view) == 255).all() and view.edges.style.lit is None
    assert not errors


def test_degree_filter_at_the_threshold(qtbot, open_window, tiny_run: Path) -> None:
    win = open_window(tiny_run)
    state, view, bar = win.state, win.view, win.focus_tools.bar
    g = view.graph
    bar.min_degree.setValue(3)
    want = degree_mask(g, 3)
    assert 0 < want.sum() < g.n_nodes
    assert bright(view) == {g.ids[i] for i in np.flatnonzero(want)}
    threshold = float(np.quantile(np.abs(g.weight), 0.5))
    win.toolbar.set_threshold(threshold)  # fewer weights shown: fewer nodes pass
    want = degree_mask(g, 3, threshold)
    assert bright(view) == {g.ids[i] for i in np.flatnonzero(want)}
    bar.min_degree.setValue(0)
    assert state.emphasis is None


def test_diff_of_two_circuits_in_the_view_and_the_exports(qtbot, open_window, two_circuit_run, tmp_path: Path,
                                                          monkeypatch, errors) -> None:
    run, c = two_circuit_run
    win = open_window(run)
    state, view, tools = win.state, win.view, win.focus_tools
    offered = []
    monkeypatch.setattr(focus_bar, "ask_partner", lambda parent, names: offered.extend(names) or "zero")
    tools.bar.compare_action.trigger()
    assert offered == ["zero", focus_bar.OTHER_FILE]  # this task's other circuits, not the one on screen
    d = state.diff
    assert d is not None and view.graph is d.graph
    side = dict(zip(d.graph.ids, d.node_side.tolist()))
    assert side[c["drop"]] == A_ONLY and side[c["add"]] == B_ONLY
    assert sum(s == BOTH for s in side.values()) == len(c["mean"]["nodes"]) - 1
    fills = [b.color() for b in view.nodes.data["brush"]]
    for i, s in enumerate(d.node_side.tolist()):
        assert (fills[i].red(), fills[i].green(), fills[i].blue()) == theme.DIFF_COLORS[s]
    header = view.header.text()
    assert "circuit <b>mean</b> vs <b>zero</b>" in header and "1 only in mean" in header and "1 only in zero" in header
    assert "only in circuit zero" in view._tip(0, 0, d.graph.index[c["add"]])
    assert np.array_equal(view.edges.style.group, d.edge_side)
    # the exports: every node and weight with its side; the picture in the same colours, with a legend
    from app.window.export import export_view

    assert export_view(win, "json", tmp_path / "d.json")
    doc = json.loads((tmp_path / "d.json").read_text())
    sides = {n["id"]: n["side"] for n in doc["nodes"]}
    assert sides[c["drop"]] == "a" and sides[c["add"]] == "b" and doc["diff"]["b"] == "zero"
    assert {e["side"] for e in doc["edges"]} == {"a", "both"}  # zero lost the dropped node's weights
    assert export_view(win, "csv", tmp_path / "d.csv")
    assert ",side" in (tmp_path / "d.nodes.csv").read_text().splitlines()[0]
    assert export_view(win, "svg", tmp_path / "d.svg")
    svg = (tmp_path / "d.svg").read_text()
    assert "only in zero" in svg and "#%02x%02x%02x" % theme.DIFF_COLORS[B_ONLY] in svg
    assert f'data-id="{c["add"]}"' in svg
    tools.bar.stop_action.trigger()
    assert state.diff is None and view.graph is state.bundle.circuit_graph
    assert "vs" not in view.header.text()
    assert not errors


def test_compare_with_a_circuit_that_does_not_fit_is_a_dialog(qtbot, open_window, two_circuit_run, tmp_path: Path,
                                                              errors) -> None:
    run, c = two_circuit_run
    win = open_window(run)
    alien = tmp_path / "alien.json"
    alien.write_text(json.dumps(dict(c["mean"], nodes=c["mean"]["nodes"] + ["blocks.9.mlp.neuron:0"])))
    assert not win.focus_tools.compare_with(str(alien))
    assert win.state.diff is None and errors and "made for another model" in errors[-1][1]


def test_session_keys_round_trip_and_a_gone_partner_is_dropped(qtbot, open_window, two_circuit_run, tmp_path: Path,
                                                               monkeypatch, warnings_shown) -> None:
    run, c = two_circuit_run
    win = open_window(run)
    state, tools = win.state, win.focus_tools
    assert tools.compare_with("zero")
    state.select(c["add"])
    tools.bar.focus_action.trigger()
    tools.bar.hops.setValue(2)
    tools.bar.min_degree.setValue(1)
    path = write_session(tmp_path / "s.json", win.current_session())
    data = json.loads(path.read_text())
    assert data["focus"] is True and data["focus_hops"] == 2 and data["min_degree"] == 1
    assert data["diff"] == f"circuits/{TASK}/zero.json"  # relative to the run, like "circuit"
    emphasis = state.emphasis
    other = open_window(run)
    with qtbot.waitSignal(other.ready, timeout=LOAD_TIMEOUT_MS):
        assert other.open_session(read_session(path, drop_invalid=True))
    s2 = other.state
    qtbot.waitUntil(lambda: s2.emphasis == emphasis, timeout=5000)
    assert s2.focus == state.focus and s2.diff is not None and s2.diff.diff == state.diff.diff
    assert s2.selected == c["add"] and other.view.graph is s2.diff.graph
    assert other.focus_tools.bar.hops.value() == 2 and other.focus_tools.bar.focus_action.isChecked()
    # an older session (no focus keys) turns them off; a partner that is gone is left out, and said so
    (run / "circuits" / TASK / "zero.json").unlink()
    with qtbot.waitSignal(other.ready, timeout=LOAD_TIMEOUT_MS):
        assert other.open_session(read_session(path, drop_invalid=True))
    assert other.state.diff is None and other.state.focus.hops == 2
    assert any("comparison with the circuit" in text and "zero.json" in text for _, text in warnings_shown)
    older = {k: v for k, v in data.items() if k not in ("focus", "focus_hops", "min_degree", "diff")}
    (tmp_path / "old.json").write_text(json.dumps(older))
    with qtbot.waitSignal(other.ready, timeout=LOAD_TIMEOUT_MS):
        assert other.open_session(read_session(tmp_path / "old.json"))
    assert not other.state.focus.active and other.state.emphasis is None
    monkeypatch.setattr(dialogs, "show_warning", lambda *a: None)
