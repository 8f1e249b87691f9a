"""The Training panel in-process (pytest-qt, offscreen): a real tiny training streams progress to the
bar and the curves, cancels, resumes to completion and opens in the graph; the event loop keeps
turning during a job; closing the window mid-job asks, cancels and leaves a checkpoint; bad input
(an empty corpus, invalid values, an unusable output folder) becomes a message and the app runs on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDockWidget

from app.window.main_window import MainWindow
from app.panels.docks import ROLE_PATH
from app.panels.train_curves import CAPACITY, CurveBuffer, TrainCurves
from app.panels.train import TRAIN_JOB

REPO = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_MS = 90_000
SAMPLE = '''
def greet(name, greeting="hello"):
    message = f"{greeting}, {name}!"
    items = [[1, 2], [3, 4]]
    table = {"a": 1, 'b': 2}
    if name == "x":
        return message
    else:
        return items
'''


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(10):
        (folder / f"m{i}.py").write_text(SAMPLE.replace("greet", f"greet_{i}") * 6)
    return folder


@pytest.fixture
def window(qtbot, errors) -> MainWindow:
    """A shown window with the Training panel open (persisting settings, which the conftest isolates,
    so that trained runs join the Recent list of the run browser)."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.show_train_panel()
    return win

#: Seconds close() may take while cancelling a training (not a speed target: see the README's measurements).
CLOSE_BOUND_S = 10.0


def _setup(win: MainWindow, corpus: Path, out: Path, steps: int) -> None:
    """The tiny preset on the test corpus into ``out``."""
    form = win.train_panel.form
    form.preset.setCurrentText("tiny")
    form.set_values({"steps": steps, "corpus": str(corpus), "output": str(out)})
    assert win.train_panel.start_button.isEnabled(), form.message.text()


def _run(qtbot, win: MainWindow, button, on_event=None):
    """Click ``button`` and wait for the job to end; returns (outcome, events)."""
    events = []

    def record(name, event):
        events.append(event)
        if on_event is not None:
            on_event(event)

    win.jobs.progress.connect(record)
    try:
        with qtbot.waitSignal(win.jobs.finished, timeout=JOB_TIMEOUT_MS) as ended:
            button.click()
    finally:
        win.jobs.progress.disconnect(record)
    return ended.args[0], events


def test_train_cancel_resume_and_open_from_the_panel(window: MainWindow, qtbot, corpus: Path, tmp_path: Path,
                                                     errors) -> None:
    from engine import api

    panel = window.train_panel
    out = tmp_path / "run"
    _setup(window, corpus, out, steps=100)  # the tiny preset evaluates every 50 steps

    def cancel_at_step_5(event):
        if event.kind == "step" and event.step >= 5:
            panel.cancel_button.click()  # what a user does; the job stops after its current step

    outcome, events = _run(qtbot, window, panel.start_button, cancel_at_step_5)
    assert outcome.status == "cancelled", outcome
    status = api.train_status(out)
    k = status.steps_done
    assert 5 <= k < 50 and status.has_model and not status.complete  # stopped a few steps after 5
    steps_seen = [e.step for e in events if e.kind == "step"]
    assert steps_seen and max(steps_seen) <= k
    # The bar and the curves got the events; the redraw timer drew them.
    assert 0 < panel.progress.value() < 1000 and f"cancelled at step {k}" in panel.progress.format()
    qtbot.waitUntil(lambda: panel.curves.point_count("loss:train") > 0, timeout=2000)
    for key in ("loss:val", "lr:lr", "density:matrices", *(f"tasks:{t}" for t in api.DEFAULT_MONITOR_TASKS)):
        assert panel.curves.point_count(key) > 0, key
    # The run joined the run browser; Start is off for a folder that holds a run, Resume is on.
    recent = [window.runs.list.item(i).data(ROLE_PATH) for i in range(window.runs.list.count())]
    assert str(out.resolve()) in recent
    assert panel.resume_button.isEnabled() and not panel.start_button.isEnabled()

    outcome, events = _run(qtbot, window, panel.resume_button)
    assert outcome.status == "done", outcome
    steps_seen = [e.step for e in events if e.kind in ("step", "eval")]
    assert steps_seen[0] == k + 1 and steps_seen[-1] == 100  # the step count continued
    assert api.train_status(out).complete
    assert panel.progress.value() == 1000 and "finished" in panel.progress.format()
    qtbot.waitUntil(lambda: not panel.curves.pending, timeout=2000)  # the last redraw happened
    val_x, _ = panel.curves.items["loss:val"].getData()
    assert list(val_x) == [0, 50, 100]  # step 0 from the run's log, then the resumed evaluations
    assert not errors
    # The curves follow the output folder: none for an empty one, the run's own log when it returns.
    panel.form.set_values({"output": str(tmp_path / "elsewhere")})
    assert panel.curves.point_count("loss:train") == 0 and "Start trains a new run" in panel.status.text()
    panel.form.set_values({"output": str(out)})
    val_x, _ = panel.curves.items["loss:val"].getData()
    assert list(val_x) == [0, 50, 100] and panel.curves.point_count("loss:train") > 0

    with qtbot.waitSignal(window.ready, timeout=JOB_TIMEOUT_MS):
        panel.open_button.click()
    assert window.state.bundle.run_path == out.resolve()
    assert not errors


def test_event_loop_keeps_turning_during_a_training(window: MainWindow, qtbot, corpus: Path, tmp_path: Path) -> None:
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    _setup(window, corpus, tmp_path / "run", steps=40)
    timer.start()
    t0 = time.perf_counter()
    outcome, events = _run(qtbot, window, window.train_panel.start_button)
    elapsed = time.perf_counter() - t0
    timer.stop()
    assert outcome.status == "done" and any(e.kind == "step" for e in events)
    during = [t for t in ticks if t0 <= t]
    gaps = [b - a for a, b in zip(during, during[1:])]
    # A 10 ms timer ticks elapsed/0.01 times on an idle machine; a training in the GUI thread would
    # stop it for the whole run (several seconds). Ask for a third of the ticks and no pause over
    # 1.5 s: the guard's one-off collection before it freezes the heap (app.workers.gc_guard) takes 0.6 s on busy cores.
    assert len(during) >= elapsed / 0.01 / 3, (len(during), elapsed)
    assert max(gaps) < 1.5, max(gaps)


@pytest.fixture
def app_gc_guard():
    """Hold the GC guard like circuit-inspector does for its whole life (app.main): otherwise closing
    the window releases its last user, which ends with a full collection (0.6 s here) that has
    nothing to do with stopping a job."""
    from app.workers import gc_guard

    gc_guard.install()
    yield
    gc_guard.uninstall()


def test_closing_mid_job_asks_then_cancels_promptly(app_gc_guard, window: MainWindow, qtbot, corpus: Path,
                                                           tmp_path: Path, questions) -> None:
    from engine import api

    out = tmp_path / "run"
    _setup(window, corpus, out, steps=1000)
    with qtbot.waitSignal(window.jobs.progress, timeout=JOB_TIMEOUT_MS,
                          check_params_cb=lambda name, ev: ev.kind == "step" and ev.step >= 3):
        window.train_panel.start_button.click()
    questions.answer = False  # "No": the window stays and the training goes on
    window.close()
    assert window.isVisible() and window.jobs.running == TRAIN_JOB
    assert len(questions) == 1 and "training" in questions[0][1]
    questions.answer = True
    t0 = time.perf_counter()
    window.close()
    took = time.perf_counter() - t0
    assert not window.isVisible() and window.jobs.running is None
    # Measured 0.02-0.13 s (README); the bound only says close() did not wait for the training to run
    # to its end, and leaves room for a loaded CI machine (1.05 s was seen with both cores busy).
    assert took < CLOSE_BOUND_S, f"closing took {took:.2f} s"
    status = api.train_status(out)
    assert status.steps_done >= 3 and status.has_model  # the cancel checkpoint
    assert not list(out.rglob("*.tmp"))


def test_closing_mid_job_exits_cleanly_in_a_subprocess(corpus: Path, tmp_path: Path, isolated_qsettings: Path) -> None:
    """The whole app in its own process: close at the third training step -> exit 0 within seconds,
    no "QThread: Destroyed while thread is still running" abort, and a checkpoint on disk."""
    out = tmp_path / "run"
    env = {**os.environ, "XDG_CONFIG_HOME": str(isolated_qsettings), "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("close_mid_job_driver.py")), str(corpus),
                           str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    for word in ("QThread: Destroyed", "Aborted", "Traceback"):
        assert word not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["asked"] == ["Quit while a job runs?"]
    assert result["job_after_close"] is None  # the training thread had ended when close() returned
    assert result["close_s"] < CLOSE_BOUND_S, result
    assert result["steps_done"] >= 3  # the cancel checkpoint
    assert wall < 60, wall  # start-up (torch import) + a few steps + close


def test_empty_corpus_folder_is_a_dialog_and_the_app_runs_on(window: MainWindow, qtbot, tmp_path: Path,
                                                            errors) -> None:
    empty = tmp_path / "no_python"
    empty.mkdir()
    (empty / "notes.txt").write_text("no source files here")
    out = tmp_path / "run"
    _setup(window, empty, out, steps=20)
    outcome, _ = _run(qtbot, window, window.train_panel.start_button)
    assert outcome.status == "failed" and outcome.user_error
    assert len(errors) == 1
    title, text = errors[0]
    assert title == "training failed"
    assert "no readable .py files" in text and "choose a folder that holds .py source files" in text
    assert not out.exists()  # nothing half-made is left behind
    panel = window.train_panel
    assert panel.start_button.isEnabled() and panel.progress.format() == "failed"
    assert window.isVisible() and window.jobs.running is None


def test_invalid_values_show_the_engines_message_next_to_the_form(window: MainWindow, errors) -> None:
    panel = window.train_panel
    form = panel.form
    form.widgets["d_model"].setValue(40)
    assert "must be a multiple of model.d_head (16)" in form.message.text()
    assert not panel.start_button.isEnabled()
    panel.start()  # e.g. through a shortcut: a dialog with the same message, no job
    assert errors and errors[-1][0] == "Invalid training config" and "d_head" in errors[-1][1]
    assert window.jobs.running is None
    form.widgets["d_model"].setValue(48)
    form.widgets["density"].setValue(0.0)
    assert "sparsity.density must be in (0, 1]" in form.message.text()
    form.widgets["dense"].setChecked(True)  # a dense twin has no density: the (disabled) field is not used
    assert form.message.text() == "" and not form.widgets["density"].isEnabled()
    form.widgets["dense"].setChecked(False)
    assert "sparsity.density" in form.message.text()
    form.widgets["density"].setValue(0.0625)
    assert form.message.text() == "" and panel.start_button.isEnabled()


def _fake_run(folder: Path, steps: int = 150) -> Path:
    """A run folder as train_status sees it (a config.json; no weights needed): 3 layers, ``steps``."""
    from engine import api
    from engine.fileio import atomic_write_json

    folder.mkdir(parents=True)
    atomic_write_json(folder / "config.json",
                      api.make_config("tiny", steps=steps, overrides=["model.n_layer=3"]).to_dict())
    return folder


def test_typing_a_path_through_a_run_folder_keeps_the_form(window: MainWindow, corpus: Path, tmp_path: Path,
                                                           monkeypatch, errors) -> None:
    """Issue 15.5: typing /runs/tiny2 passes /runs/tiny, a run's folder; the form keeps its edits, Start
    trains what it shows, and a run's config comes in only on an explicit choice."""
    from app.widgets import dialogs
    from engine import api

    tiny = _fake_run(tmp_path / "runs" / "tiny")
    panel, form = window.train_panel, window.train_panel.form
    form.set_values({"steps": 3000, "corpus": str(corpus), "output": ""})
    seen = []
    target = str(tmp_path / "runs" / "tiny2")
    for i in range(1, len(target) + 1):  # one edit per key, like typing
        form.output.setText(target[:i])
        seen.append((form.output.text(), form.values()["steps"], panel.load_button.isEnabled()))
    assert all(steps == 3000 for _, steps, _ in seen)  # never filled from the folder on the way
    assert any(text == str(tiny) and can_load for text, _, can_load in seen)  # "Load its config" offered there
    assert form.values()["n_layer"] == 2 and panel.status.text().startswith(f"Start trains a new run into {target}")
    # Start trains exactly what the form shows.
    started = []
    monkeypatch.setattr(api, "train", lambda out, cfg=None, **kw: (out, cfg))
    monkeypatch.setattr(window.jobs, "start", lambda name, factory: started.append(factory()))
    panel.start_button.click()
    assert len(started) == 1 and started[0][1].train.steps == 3000 and started[0][1].model.n_layer == 2
    assert str(started[0][0]) == target
    # In the run's folder: nothing changes until "Load its config" is pressed.
    form.output.setText(str(tiny))
    assert form.values()["steps"] == 3000 and "Load its config" in panel.status.text()
    panel.load_button.click()
    assert form.values()["steps"] == 150 and form.values()["n_layer"] == 3 and form.values()["output"] == str(tiny)
    # Choosing a run's folder with the picker is an explicit choice too.
    form.set_values({"steps": 3000, "output": str(tmp_path / "elsewhere")})
    monkeypatch.setattr(dialogs, "ask_folder", lambda parent, title, start="": tiny)
    form.output.parentWidget().findChild(type(panel.start_button)).click()  # the output's "…" button
    assert form.values()["output"] == str(tiny) and form.values()["steps"] == 150
    assert errors == []


def test_unusable_output_folder_is_a_dialog(window: MainWindow, corpus: Path, tmp_path: Path, errors) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the output's parent folder should be")
    _setup(window, corpus, blocker / "run", steps=20)
    window.train_panel.start_button.click()
    assert errors == [("Cannot train into this folder", errors[0][1])]
    assert "is a file, not a folder" in errors[0][1] and "choose another output folder" in errors[0][1]
    assert window.jobs.running is None and window.isVisible()


def test_training_dock_is_hidden_until_asked_for(qtbot, errors) -> None:
    win = MainWindow(persist_settings=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    dock = win.findChild(QDockWidget, "trainDock")
    assert dock is not None and not dock.isVisible()
    assert win.menu_actions.train.shortcut().toString() == "Ctrl+T"
    win.menu_actions.train.trigger()
    assert dock.isVisible() and win.train_panel.form.preset.currentText() == "tiny"
    assert win.train_panel.form.values()["steps"] == 150  # the tiny preset


def test_a_restored_training_dock_waits_for_the_first_paint(qtbot, errors) -> None:
    """A dock left open last time comes back open, but fills its form (which imports the engine and
    torch) only after the window has painted."""
    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    qtbot.waitExposed(first)
    first.show_train_panel()
    first.close()  # saves the layout, training dock included
    win = MainWindow()
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.firstPaint, timeout=10_000):
        win.show()
        assert win.train_dock.isVisible() and win.train_panel.form.preset.count() == 0
    qtbot.waitUntil(lambda: win.train_panel.form.preset.count() > 0, timeout=10_000)


# -- curves ----------------------------------------------------------------------------------------

def test_curve_buffer_stays_bounded_and_keeps_the_shape() -> None:
    buf = CurveBuffer(capacity=8)
    for i in range(5):
        buf.append(i, 2.0 * i)
    x, y = buf.arrays()
    assert list(x) == [0, 1, 2, 3, 4] and list(y) == [0, 2, 4, 6, 8]
    for i in range(5, 1000):
        buf.append(i, 2.0 * i)
    x, y = buf.arrays()
    assert len(x) <= 9 and buf.stride > 1 and buf.received == 1000
    assert (abs(y - 2 * x) < 1e-9).all()  # pairwise means of a line stay on the line
    # The whole run, in order: each point is the mean of one bucket of ``stride`` steps.
    assert x[0] < buf.stride and x[-1] > 999 - buf.stride and (x[1:] > x[:-1]).all()


def test_curves_redraw_at_most_a_few_times_a_second(qtbot) -> None:
    curves = TrainCurves()
    qtbot.addWidget(curves)
    t0 = time.perf_counter()
    for step in range(20_000):  # far more than a long run sends
        curves.add_point(step, train_loss=5.0 / (1 + step), lr=1e-3,
                         density={"matrices": 0.1}, task_losses={"t": 0.5} if step % 100 == 0 else None)
    assert time.perf_counter() - t0 < 5.0
    qtbot.waitUntil(lambda: curves.point_count("loss:train") > 0, timeout=2000)
    assert curves.redraws == 1  # everything above coalesced into one redraw
    assert 0 < curves.point_count("loss:train") <= CAPACITY + 1
    assert 0 < curves.point_count("tasks:t") <= 200
