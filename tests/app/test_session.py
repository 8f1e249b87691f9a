"""Sessions in the window (pytest-qt, offscreen, a tiny real run): save, open in a new window, get
the identical view; a session whose run or circuit is gone gives a dialog and changes nothing.

Waits are on signals or conditions, never sleeps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app.widgets import dialogs

from app.window import export
from app.window.main_window import MainWindow
from engine.scene.session import read_session

LOAD_TIMEOUT_MS = 120_000
EVAL_TIMEOUT_MS = 60_000


def settle(qtbot, win) -> None:
    qtbot.waitUntil(lambda: export.current_result(win.state) is not None and win.view.is_drawn
                    and not win.service.trace.pending, timeout=EVAL_TIMEOUT_MS)  # the pair's trace colours tokens


def pixels(win) -> np.ndarray:
    image = win.view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    return np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width()).copy()


def view_state(win) -> dict:
    s = win.state
    return {"run": s.bundle.run_path, "task": s.bundle.task.name, "circuit": s.bundle.circuit_path, "view": s.view,
            "mode": s.mode, "baseline": s.baseline, "nodes": s.ablation.nodes, "edges": s.ablation.edges,
            "selected": s.selected, "pair": s.pair, "threshold": s.threshold, "labels": dict(s.labels),
            "range": win.view.vb.viewRange(), "slider": win.toolbar.threshold_slider.value(),
            "loss": s.evaluation.result.loss}


def new_window(qtbot) -> MainWindow:
    win = MainWindow(persist_settings=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_save_open_in_a_new_window_gives_the_identical_view(open_window, fresh_tiny_run: Path, tmp_path: Path,
                                                            qtbot, monkeypatch, errors) -> None:
    a = open_window(fresh_tiny_run)
    s, g = a.state, a.state.graph
    s.set_mode("zero")
    s.set_ablation([g.ids[2], g.ids[30]], [g.edge_id(1)], "test")
    s.set_pair(2)
    s.set_label(g.ids[7], "quote detector")
    a.toolbar.threshold_slider.setValue(30)
    s.select(g.ids[7])
    x, y = g.pos[7]
    a.view.vb.setRange(xRange=(x - 9.0, x + 6.0), yRange=(y - 4.0, y + 3.0), padding=0)
    settle(qtbot, a)
    path = tmp_path / "saved.json"
    monkeypatch.setattr(dialogs, "ask_save_session", lambda parent, start="": path)
    a.menu_actions.save_session.trigger()
    saved = read_session(path)
    assert saved.labels[g.ids[7]] == "quote detector" and "Saved the session" in a.statusBar().currentMessage()
    assert saved.run == str(fresh_tiny_run.resolve())
    assert saved.circuit == a.state.bundle.circuit_path.relative_to(fresh_tiny_run).as_posix()  # moves with the run
    before, image = view_state(a), pixels(a)
    (fresh_tiny_run / "labels.json").unlink()  # the label must come back from the session file itself

    b = new_window(qtbot)
    monkeypatch.setattr(dialogs, "ask_open_session", lambda parent, start="": path)
    with qtbot.waitSignal(b.ready, timeout=LOAD_TIMEOUT_MS):
        b.menu_actions.open_session.trigger()
    starts = []
    monkeypatch.setattr(dialogs, "ask_open_session", lambda parent, start="": starts.append(start))
    a.menu_actions.open_session.trigger()  # cancelled; the dialog started where Save session writes
    assert starts == [str(a.state.bundle.derived / "sessions")] and (a.state.bundle.derived / "sessions").is_dir()
    settle(qtbot, b)
    assert view_state(b) == before
    assert np.array_equal(pixels(b), image), f"{np.mean(pixels(b) != image):.4%} of the view's pixels differ"
    assert errors == []


def test_a_session_naming_a_missing_run_is_a_dialog(open_window, fresh_tiny_run: Path, tmp_path: Path, qtbot,
                                                   monkeypatch, errors) -> None:
    win = open_window(fresh_tiny_run)
    before = view_state(win)
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"kind": "session", "run": str(tmp_path / "moved-away"),
                                "ablated_nodes": [win.state.graph.ids[0]]}))
    monkeypatch.setattr(dialogs, "ask_open_session", lambda parent, start="": path)
    win.menu_actions.open_session.trigger()
    title, text = errors[-1]
    assert title == "Cannot open the session's run"
    assert str(path) in text and str(tmp_path / "moved-away") in text and "Open run folder" in text
    assert view_state(win) == before and win.isVisible()
    # The failed session is forgotten: the next load is not restored from it.
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.load_run(fresh_tiny_run)
    assert win.state.ablation.nodes == frozenset()


def test_a_session_naming_a_missing_circuit_is_a_dialog(open_window, fresh_tiny_run: Path, tmp_path: Path, qtbot,
                                                       monkeypatch, errors) -> None:
    win = open_window(fresh_tiny_run)
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"kind": "session", "run": str(fresh_tiny_run), "circuit": str(tmp_path / "gone.json"),
                                "ablated_nodes": [win.state.graph.ids[0]]}))
    monkeypatch.setattr(dialogs, "ask_open_session", lambda parent, start="": path)
    win.menu_actions.open_session.trigger()
    qtbot.waitUntil(lambda: bool(errors), timeout=LOAD_TIMEOUT_MS)
    assert "gone.json" in errors[-1][1] and win.loader.pending_session is None
    assert win.state.ablation.nodes == frozenset() and win.isVisible()


@pytest.mark.parametrize("content, match", [("{", "not valid JSON"), ('{"kind": "circuit"}', "not a session file")])
def test_a_broken_session_file_is_a_dialog(open_window, fresh_tiny_run: Path, tmp_path: Path, monkeypatch, errors,
                                          content: str, match: str) -> None:
    win = open_window(fresh_tiny_run)
    path = tmp_path / "broken.json"
    path.write_text(content)
    monkeypatch.setattr(dialogs, "ask_open_session", lambda parent, start="": path)
    win.menu_actions.open_session.trigger()
    assert errors[-1][0] == "Cannot open session" and match in errors[-1][1]


def test_saving_a_session_where_it_cannot_be_written_is_a_dialog(open_window, fresh_tiny_run: Path, tmp_path: Path,
                                                                monkeypatch, errors) -> None:
    win = open_window(fresh_tiny_run)
    monkeypatch.setattr(dialogs, "ask_save_session", lambda parent, start="": tmp_path / "no" / "s.json")
    win.menu_actions.save_session.trigger()
    title, text = errors[-1]
    assert title == "Cannot save session" and "Nothing was written" in text
    assert not (tmp_path / "no").exists()


def _open_session_file(win, qtbot, monkeypatch, path: Path) -> None:
    monkeypatch.setattr(dialogs, "ask_open_session", lambda parent, start="": path)
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.menu_actions.open_session.trigger()
    settle(qtbot, win)


def test_a_session_that_partly_fits_is_applied_and_says_what_was_left_out(
        open_window, fresh_tiny_run: Path, tmp_path: Path, qtbot, monkeypatch, errors, warnings_shown) -> None:
    win = open_window(fresh_tiny_run)
    g = win.state.graph
    path = tmp_path / "partly.json"
    path.write_text(json.dumps({
        "kind": "session", "run": str(fresh_tiny_run), "mode": "zero",
        "ablated_nodes": [g.ids[3], "blocks.7.mlp.neuron:99999"], "ablated_edges": [g.edge_id(0), "x->y"],
        "selected": "blocks.9.attn.q:1", "pair": 1e9, "labels": {g.ids[4]: "kept", "nope:1": "lost"}}))
    _open_session_file(win, qtbot, monkeypatch, path)
    s = win.state
    assert s.mode == "zero" and s.ablation.nodes == frozenset({g.ids[3]}) and s.ablation.edges == frozenset({g.edge_id(0)})
    assert s.pair == len(s.bundle.task_view.pairs) - 1 and s.labels[g.ids[4]] == "kept" and "nope:1" not in s.labels
    assert s.selected is None and errors == []
    [(title, text)] = warnings_shown
    assert title == "Session partly restored" and text.startswith("Restored partly.json except")
    for said in ("blocks.7.mlp.neuron:99999", "x->y", "blocks.9.attn.q:1", "pair 1000000000", "nope:1"):
        assert said in text, said
    assert "\n" not in text  # one sentence
    log = win.log_panel.text.toPlainText()
    assert "session: left out the ablation of unknown node blocks.7.mlp.neuron:99999" in log  # the details


@pytest.mark.parametrize("bad", [{"pair": -3}, {"threshold": float("nan")}, {"view_range": [-1e308, 1e308, -1, 1]},
                                 {"view_range": [0, 1e308, 0, 1e308]}, {"pair": 1e999}, {"edges": "colour"},
                                 {"side": "C"}])
def test_unusable_session_values_are_left_out_not_fatal(open_window, fresh_tiny_run: Path, tmp_path: Path, qtbot,
                                                      monkeypatch, errors, warnings_shown, bad: dict) -> None:
    win = open_window(fresh_tiny_run)
    node = win.state.graph.ids[2]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"kind": "session", "run": str(fresh_tiny_run), "ablated_nodes": [node], **bad}))
    _open_session_file(win, qtbot, monkeypatch, path)
    assert win.state.ablation.nodes == frozenset({node}) and errors == []  # the rest was applied
    [(title, text)] = warnings_shown
    key = next(iter(bad))
    assert title == "Session partly restored" and f"{key} " in text and "\n" not in text
    (x0, x1), (y0, y1) = win.view.vb.viewRange()
    assert all(np.isfinite([x0, x1, y0, y1])) and max(abs(x0), abs(x1), abs(y0), abs(y1)) < 1e6
    assert np.isfinite(win.state.threshold) and win.state.pair == 0
