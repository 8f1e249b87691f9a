"""The Pruning panel on a real tiny run: a circuit made in the background opens in the graph and
joins the circuit list; Cancel stops a job promptly; bad task files give the engine's message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.widgets import dialogs

from app.panels import job_box

LOAD_TIMEOUT_MS = 120_000
TASK = "single_double_quote"  # the task of the tiny run's hand-made circuit (tests/app/conftest.py)

FAST = {"k_coefs": (0.01,), "train_pairs": 32, "val_pairs": 16, "batch_pairs": 8}


@pytest.fixture
def fast_pruning(monkeypatch):
    monkeypatch.setattr(job_box, "FIXED_SETTINGS", FAST)


def test_prune_from_panel_opens_the_circuit_and_lists_it(qtbot, open_window, fresh_tiny_run: Path, errors,
                                                        fast_pruning) -> None:
    win = open_window(fresh_tiny_run)
    panel = win.tools.prune_panel
    before = panel.circuit_paths()
    assert before == [str(fresh_tiny_run / "circuits" / TASK / "mean.json")]
    assert panel.chosen_task() == (TASK, None)
    panel.settings.target.setValue(5.0)  # the random-weight tiny model is near chance: a loose target
    panel.settings.ablation.setCurrentText("zero")
    panel.settings.steps.setValue(3)
    events = []
    win.jobs.progress.connect(lambda name, ev: events.append(ev))
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as done:
        qtbot.mouseClick(panel.job.start_button, Qt.MouseButton.LeftButton)
        assert not panel.job.start_button.isEnabled() and panel.job.cancel_button.isEnabled()
    assert done.args[0].status == "done", done.args[0]
    saved = fresh_tiny_run / "circuits" / TASK / "zero.json"  # where `circuit-engine prune --ablation zero` saves
    assert saved.exists() and str(done.args[0].result[1]) == str(saved)
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        pass  # the window reloads with the new circuit
    b = win.state.bundle
    assert b.circuit_path == saved and b.circuit.name == "zero"
    assert win.state.view == "circuit" and set(win.state.graph.ids) == {str(n) for n in b.circuit.nodes}
    assert panel.circuit_paths() == sorted(before + [str(saved)])
    assert panel.circuit_list.currentItem().data(Qt.ItemDataRole.UserRole) == str(saved)
    assert {"step", "bisect", "curve", "faithfulness"} <= {e.kind for e in events}
    assert panel.job.progress.value() == 1000 and "saved to" in panel.job.status.text()
    assert panel.job.start_button.isEnabled() and not panel.job.cancel_button.isEnabled()
    # double-clicking the older circuit in the list opens it again
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        panel.circuitActivated.emit(before[0])
    assert win.state.bundle.circuit_path == Path(before[0])
    assert errors == []


def test_cancel_stops_pruning_promptly(qtbot, open_window, fresh_tiny_run: Path, errors, fast_pruning) -> None:
    win = open_window(fresh_tiny_run)
    panel = win.tools.prune_panel
    circuits = fresh_tiny_run / "circuits" / TASK
    before = {p.name: p.read_bytes() for p in circuits.iterdir()}
    panel.settings.target.setValue(5.0)
    panel.settings.steps.setValue(100_000)  # far longer than the test: only Cancel ends it
    with qtbot.waitSignal(win.jobs.progress, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda name, ev: getattr(ev, "kind", "") == "step"):
        panel.job.start_button.click()
    t0 = time.perf_counter()
    with qtbot.waitSignal(win.jobs.finished, timeout=5000) as done:
        qtbot.mouseClick(panel.job.cancel_button, Qt.MouseButton.LeftButton)
    assert time.perf_counter() - t0 < 2.0
    assert done.args[0].status == "cancelled"
    assert {p.name: p.read_bytes() for p in circuits.iterdir()} == before  # nothing saved or overwritten
    assert "cancelled" in panel.job.status.text() and panel.job.start_button.isEnabled()
    assert win.jobs.running is None and errors == []


def test_task_file_errors_show_the_engines_message(qtbot, open_window, fresh_tiny_run: Path, errors, tmp_path,
                                                   monkeypatch, fast_pruning) -> None:
    win = open_window(fresh_tiny_run)
    panel = win.tools.prune_panel
    pair = {"prompt_a": 'x = "a', "target_a": '"', "prompt_b": "x = 'a", "target_b": "'"}
    too_few = tmp_path / "few.json"
    too_few.write_text(json.dumps({"name": "few", "pairs": [pair]}))
    many = [{**pair, "prompt_a": f'v{i} = "a', "prompt_b": f"v{i} = 'a"} for i in range(12)]
    multi = tmp_path / "multi.json"  # a target of two characters is not one char token
    multi.write_text(json.dumps({"name": "multi", "pairs": [{**p, "target_a": '""'} for p in many]}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"name": "my_quotes", "pairs": many}))
    for path in (too_few, multi, good):
        monkeypatch.setattr(dialogs, "ask_task_file", lambda parent, start, p=path: p)
        qtbot.mouseClick(panel.file_button, Qt.MouseButton.LeftButton)
    assert [t for t, _ in errors] == ["Cannot use this task file"] * 2
    assert "has 1 pair(s); a task needs at least 8" in errors[0][1]
    assert "is not a single char token" in errors[1][1]
    assert panel.chosen_task() == (None, str(good))  # the good file is picked, the bad ones never were
    assert panel.task_combo.findText("my_quotes (file: good.json)") >= 0
    # the app keeps running: the good task file prunes and opens
    panel.settings.target.setValue(5.0)
    panel.settings.steps.setValue(2)
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as done:
        panel.job.start_button.click()
    assert done.args[0].status == "done", done.args[0]
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        pass
    assert win.state.bundle.task.name == "my_quotes" and win.state.bundle.circuit.task == "my_quotes"
    assert len(errors) == 2
