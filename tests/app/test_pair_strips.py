"""The selected node on the selected pair in the node inspector (issue 18, items 1 and 2): its value at
every position of A and B, and for q/k/v nodes its head's attention, as heat strips over the pair's
prompts, from the pair's trace recomputed in the ablation worker after the metrics, under every
ablation; the full pattern on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.workers.trace import head_of
from conftest import LOAD_TIMEOUT_MS

TASK = "single_double_quote"
HEAD6_K = [f"blocks.1.attn.k:{i}" for i in range(96, 112)]  # the demo's d_head is 16: head 6


def test_head_of_names_the_head_of_q_k_and_v_nodes_only() -> None:
    assert head_of("blocks.1.attn.k:97", 16) == (1, 6)
    assert head_of("blocks.0.attn.q:15", 16) == (0, 0)
    assert head_of("blocks.3.attn.v:16", 16) == (3, 1)
    for node in ("blocks.1.attn.read:97", "blocks.0.mlp.neuron:3", "blocks.1.attn.write:5", "final_resid:2",
                 None, "", "blocks.x.attn.k:1", "blocks.1.attn.k:-1"):
        assert head_of(node, 16) is None


@pytest.fixture
def demo_window(open_window, tmp_path: Path, monkeypatch):
    """A 1400x900 window with the bundled demo's quote circuit."""
    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))
    return open_window("demo", task=TASK)


def _wait_trace(qtbot, win, trigger, check=lambda t: t is not None) -> object:
    """Run ``trigger`` and wait until the state's trace satisfies ``check``."""
    with qtbot.waitSignal(win.state.traceChanged, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda t: t is not None and check(t)):
        trigger()
    return win.state.trace


def _head6(trace, side: int) -> np.ndarray:
    """Head 6 of layer 1 from side ``side``'s last position."""
    tr = trace.trace
    return tr.pattern(1, 6)[side, tr.last[side], :tr.lengths[side]]


def test_a_key_node_of_head_6_shows_its_head_attending_to_the_opening_quote(qtbot, demo_window, errors) -> None:
    win = demo_window
    strip = win.inspector.strips
    t = _wait_trace(qtbot, win, lambda: win.state.select(HEAD6_K[11]))
    assert t.request.pair == 0 and t.error == ""
    assert strip.isVisible() and "L1 head 6" in strip.toPlainText() and "every position" in strip.toPlainText()
    rows = strip.rows()
    assert [r[0] for r in rows] == ["A", "B"]
    for side, tokens, weights, sink in rows:
        top = tokens[int(np.argmax(weights))]
        assert top in ('"', "'"), (side, top)  # the opening quote, on both sides
        assert float(weights.max()) > 0.3 and 0.0 <= sink <= 1.0
        assert len(tokens) == len(weights)
    assert rows[0][1][int(np.argmax(rows[0][2]))] != rows[1][1][int(np.argmax(rows[1][2]))]  # A's quote vs B's
    assert "sink A" in strip.toPlainText()
    assert strip.toHtml().count("text-decoration: underline") == 5  # marked: 2 positions, 2 attention; the link
    # Another pair: traced again, and the strips follow.
    before = strip.toPlainText()
    t1 = _wait_trace(qtbot, win, lambda: win.state.set_pair(1), lambda t: t.request.pair == 1)
    assert t1 is not t and strip.toPlainText() != before
    assert errors == []


def test_ablating_the_heads_keys_moves_its_attention_after_the_metrics(qtbot, demo_window, errors) -> None:
    win = demo_window
    clean = _head6(_wait_trace(qtbot, win, lambda: win.state.select(HEAD6_K[0])), 0)
    shown = win.inspector.strips.toHtml()
    order: list[str] = []
    win.state.evaluationChanged.connect(lambda _e: order.append("metrics"))
    post = win.service.post_trace
    win.service.post_trace = lambda req: (order.append("trace"), post(req))

    def ablate() -> None:
        win.state.set_mode("zero")
        win.state.set_ablation(HEAD6_K, [], "ablate head 6's keys")

    t = _wait_trace(qtbot, win, ablate, lambda t: set(t.request.nodes) == set(HEAD6_K) and t.request.mode == "zero")
    assert float(np.abs(_head6(t, 0) - clean).max()) > 0.1  # the pattern moved
    assert win.inspector.strips.toHtml() != shown
    assert order and order[0] == "metrics" and order.count("trace") == 1  # one request, after the metrics
    # Undo brings the clean pattern back (the newest request wins).
    def restore() -> None:
        win.state.undo()
        win.state.set_mode("mean")

    t = _wait_trace(qtbot, win, restore, lambda t: t.request.nodes == () and t.request.mode == "mean")
    np.testing.assert_allclose(_head6(t, 0), clean, atol=1e-6)
    assert errors == []


def test_the_value_node_reads_the_quote_type_at_the_opening_quote(qtbot, demo_window, errors) -> None:
    """The issue's example: v:99 reads ~0 at the last position; at every position its largest |value| is
    at the opening quote, and it differs between A and B there. Not a head's q/k: no attention lines."""
    win = demo_window
    strip = win.inspector.strips
    _wait_trace(qtbot, win, lambda: win.state.select("blocks.0.mlp.neuron:43"))
    assert "every position" in strip.toPlainText() and "head" not in strip.toPlainText()
    assert strip.rows() == [] and len(strip.positions()) == 2
    win.state.select("blocks.1.attn.v:99")
    qtbot.waitUntil(lambda: "L1 head 6" in strip.toPlainText(), timeout=LOAD_TIMEOUT_MS)
    (_, toks_a, va), (_, toks_b, vb) = strip.positions()
    qa = max(i for i, t in enumerate(toks_a) if t in ('"', "'"))  # the opening quote of the open string
    qb = max(i for i, t in enumerate(toks_b) if t in ('"', "'"))
    assert toks_a[qa] != toks_b[qb]
    assert abs(va[qa] - vb[qb]) > 0.5 and abs(va[-1] - vb[-1]) < 0.1  # the quote type: there, not at the end
    win.state.select(None)
    assert not strip.isVisible()
    assert errors == []


def test_the_full_pattern_opens_on_demand_and_follows_ablations(qtbot, demo_window, errors) -> None:
    from PySide6.QtCore import QUrl

    win = demo_window
    strip = win.inspector.strips
    t = _wait_trace(qtbot, win, lambda: win.state.select(HEAD6_K[2]))
    strip.anchorClicked.emit(QUrl("pattern"))
    dlg = win.inspector.pattern
    assert dlg is not None and dlg.isVisible() and (dlg.layer, dlg.head) == (1, 6)
    mats = dlg.matrices()
    assert [m.shape for m in mats] == [(n, n) for n in t.trace.lengths]
    for m in mats:
        assert np.all(np.triu(m, 1) == 0) and np.all(m.sum(1) <= 1 + 1e-5)  # causal; the sink takes the rest
    np.testing.assert_allclose(mats[0][-1], _head6(t, 0))  # its last row is the strip
    _wait_trace(qtbot, win, lambda: win.state.set_ablation(HEAD6_K, [], "keys"),
                lambda t: set(t.request.nodes) == set(HEAD6_K))
    assert np.abs(dlg.matrices()[0] - mats[0]).max() > 0.05
    dlg.close()
    assert errors == []


def test_the_graph_token_rows_show_both_prompts_and_the_selected_node(qtbot, demo_window, errors) -> None:
    """Prompt B is drawn under prompt A; a selected node colours each token by its value there, and a
    head's node frames the tokens its head attends to (strongest on the opening quote)."""
    from engine.scene.layout import MAX_TOKENS

    win = demo_window
    rows, tv = win.view.tokens, win.state.bundle.task_view
    assert len(rows.side_items(0)) == min(len(tv.tokens[0]), MAX_TOKENS)
    assert len(rows.side_items(1)) == min(len(tv.tokens[1]), MAX_TOKENS)
    assert max(rows.shown_fill(0) + rows.shown_frame(0)) == 0  # nothing selected: plain tokens
    boxed = [False] * (len(rows.side_items(0)) - 1) + [True]
    assert rows.boxed() == boxed  # but for the box on prompt A's last token, where the metrics read
    t = _wait_trace(qtbot, win, lambda: win.state.select(HEAD6_K[11]))
    for side in (0, 1):
        frames, items = rows.shown_frame(side), rows.side_items(side)
        assert max(frames) > 0
        assert items[int(np.argmax(frames))].textItem.toPlainText() in ('"', "'")
        vals = np.nan_to_num(t.trace.positions(HEAD6_K[11])[side, :t.trace.lengths[side]])[-len(items):]
        fills = rows.shown_fill(side)
        assert (np.array(fills) > 0).tolist() == (np.abs(vals) > 1e-3 * np.abs(vals).max()).tolist()
    win.state.select("blocks.0.mlp.neuron:43")  # not a head: no frames once its trace is drawn
    qtbot.waitUntil(lambda: max(rows.shown_frame(0)) == 0, timeout=LOAD_TIMEOUT_MS)
    win.state.select(None)
    assert max(rows.shown_fill(0) + rows.shown_frame(1)) == 0
    assert rows.boxed() == boxed
    assert errors == []
