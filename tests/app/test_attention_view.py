"""The selected head's attention in the node inspector (issue 18, item 1): heat strips over the
selected pair's prompts (A and B), recomputed in the ablation worker after the metrics, under every
ablation; a hint for nodes outside attention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.panels.attention import HINT
from app.workers.attention import head_of
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


def _wait_attention(qtbot, win, trigger, check=lambda a: a is not None) -> object:
    """Run ``trigger`` and wait until the state's attention satisfies ``check``."""
    with qtbot.waitSignal(win.state.attentionChanged, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda a: a is not None and check(a)):
        trigger()
    return win.state.attention


def test_a_key_node_of_head_6_shows_its_head_attending_to_the_opening_quote(qtbot, demo_window, errors) -> None:
    win = demo_window
    strip = win.inspector.attention
    a = _wait_attention(qtbot, win, lambda: win.state.select(HEAD6_K[11]))
    assert (a.request.layer, a.request.head) == (1, 6) and a.error == ""
    assert strip.isVisible() and "L1 head 6" in strip.toPlainText()
    rows = strip.rows()
    assert [r[0] for r in rows] == ["A", "B"]
    for side, tokens, weights, sink in rows:
        top = tokens[int(np.argmax(weights))]
        assert top in ('"', "'"), (side, top)  # the opening quote, on both sides
        assert float(weights.max()) > 0.3 and 0.0 <= sink <= 1.0
        assert len(tokens) == len(weights)
    assert rows[0][1][int(np.argmax(rows[0][2]))] != rows[1][1][int(np.argmax(rows[1][2]))]  # A's quote vs B's
    assert "sink A" in strip.toPlainText() and strip.toHtml().count("text-decoration: underline") == 2
    # Another pair only redraws (every prompt was computed at once).
    before = strip.toPlainText()
    win.state.set_pair(1)
    assert win.state.attention is a and strip.toPlainText() != before
    assert errors == []


def test_ablating_the_heads_keys_moves_its_attention_after_the_metrics(qtbot, demo_window, errors) -> None:
    win = demo_window
    _wait_attention(qtbot, win, lambda: win.state.select(HEAD6_K[0]))
    clean = win.state.attention.weights.copy()
    shown = win.inspector.attention.toHtml()
    order: list[str] = []
    win.state.evaluationChanged.connect(lambda _e: order.append("metrics"))
    post = win.service.post_attention
    win.service.post_attention = lambda req: (order.append("attention"), post(req))

    def ablate() -> None:
        win.state.set_mode("zero")
        win.state.set_ablation(HEAD6_K, [], "ablate head 6's keys")

    a = _wait_attention(qtbot, win, ablate, lambda a: set(a.request.nodes) == set(HEAD6_K) and a.request.mode == "zero")
    assert float(np.abs(a.weights - clean).max()) > 0.1  # the pattern moved
    assert win.inspector.attention.toHtml() != shown
    assert order and order[0] == "metrics" and order.count("attention") == 1  # one request, after the metrics
    # Undo brings the clean pattern back (the newest request wins).
    def restore() -> None:
        win.state.undo()
        win.state.set_mode("mean")

    a = _wait_attention(qtbot, win, restore, lambda a: a.request.nodes == () and a.request.mode == "mean")
    np.testing.assert_allclose(a.weights, clean, atol=1e-6)
    assert errors == []


def test_any_other_node_shows_the_hint(qtbot, demo_window, errors) -> None:
    win = demo_window
    strip = win.inspector.attention
    _wait_attention(qtbot, win, lambda: win.state.select(HEAD6_K[3]))
    with qtbot.waitSignal(win.state.attentionChanged, timeout=5000):
        win.state.select("blocks.0.mlp.neuron:32")
    assert win.state.attention is None
    assert strip.isVisible() and strip.toPlainText().strip() == HINT and strip.rows() == []
    win.state.select(None)
    assert not strip.isVisible()
    assert errors == []
