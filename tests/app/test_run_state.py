"""What belongs to a run, a view or the window, and what must not leak between them (issue 15, items 6,
8 and 9), in-process (pytest-qt, offscreen): each view keeps its own |w| threshold; a newly opened run
starts from the defaults (a session may restore others); messages belong to their run and errors leave
the status bar; actions that cannot work are off and say why; the layout is kept across restarts and
View > Reset layout brings back the first one; switching task reuses what the run cached.

Waits are on signals or conditions, never sleeps.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics

from app.widgets import dialogs
from app.window.main_window import MainWindow, app_settings
from engine.scene.session import Session

LOAD_TIMEOUT_MS = 120_000
TASK = "single_double_quote"


def load(qtbot, win: MainWindow, run) -> None:
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        assert win.load_run(run)


# -- item 6: state that must not leak ----------------------------------------------------------------
def test_each_view_keeps_its_own_threshold(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    s, bar = win.state, win.toolbar
    circuit = s.bundle.circuit_graph
    with qtbot.waitSignal(win.view.drawn, timeout=LOAD_TIMEOUT_MS):
        s.set_view("model")
    bar.threshold_slider.setValue(90)  # hide 90% of the whole model's weights
    model_threshold = s.threshold
    assert model_threshold > 0 and win.view.edges.n_shown < s.bundle.model_graph.n_edges
    with qtbot.waitSignal(win.view.drawn, timeout=LOAD_TIMEOUT_MS):
        s.set_view("circuit")
    # The circuit shows all its weights: the whole model's threshold stayed with the whole model.
    assert s.threshold == 0.0 and bar.threshold_slider.value() == 0
    assert win.view.edges.n_shown == circuit.n_edges and f"of {circuit.n_edges:,})" in bar.threshold_label.text()
    bar.threshold_slider.setValue(20)
    circuit_threshold = s.threshold
    with qtbot.waitSignal(win.view.drawn, timeout=LOAD_TIMEOUT_MS):
        s.set_view("model")
    assert s.threshold == model_threshold and bar.threshold_slider.value() == 90
    with qtbot.waitSignal(win.view.drawn, timeout=LOAD_TIMEOUT_MS):
        s.set_view("circuit")
    assert s.threshold == circuit_threshold
    assert errors == []


def test_a_newly_opened_run_starts_from_the_defaults(qtbot, open_window, tiny_run: Path, tmp_path: Path,
                                                     errors) -> None:
    other = Path(shutil.copytree(tiny_run, tmp_path / "other"))
    win = open_window(tiny_run)
    s = win.state
    s.set_view("model")
    s.set_baseline("full")
    s.set_mode("zero")
    win.toolbar.threshold_slider.setValue(50)
    load(qtbot, win, other)
    assert (s.view, s.baseline, s.mode, s.threshold) == ("circuit", "circuit", "mean", 0.0)
    assert win.toolbar.baseline_combo.currentText() == "circuit" and win.toolbar.circuit_view_action.isChecked()
    # Another task of the same run keeps what the user chose.
    s.set_baseline("full")
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.load_task(task=TASK)
    assert s.baseline == "full"
    # A session restores its own choices on top of the defaults.
    session = Session(run=str(tiny_run), task=TASK, view="model", mode="zero", baseline="full")
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        assert win.open_session(session)
    assert (s.view, s.baseline, s.mode) == ("model", "full", "zero")
    assert errors == []


def test_messages_belong_to_their_run_and_errors_expire(qtbot, open_window, tiny_run: Path, tmp_path: Path,
                                                        monkeypatch, errors) -> None:
    other = Path(shutil.copytree(tiny_run, tmp_path / "other"))
    win = open_window(tiny_run)
    rows = [win.tools.prune_panel.job, win.tools.formation_panel.job, win.tools.compare_view.job]
    for row in rows:
        row.finish("failed: something about this run", False)
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.load_task(task=TASK)  # the same run: its messages stay
    assert all(row.status.text() == "failed: something about this run" for row in rows)
    load(qtbot, win, other)
    assert all(row.status.text() == "" and row.progress.format() == "idle" for row in rows)
    # An error in the status bar goes away by itself (the dialog and the Log keep the details).
    monkeypatch.setattr(dialogs, "STATUS_ERROR_MS", 300)
    assert not win.load_run(tmp_path / "missing")
    assert "Could not open" in win.statusBar().currentMessage() and len(errors) == 1
    qtbot.waitUntil(lambda: win.statusBar().currentMessage() == "", timeout=5000)
    win.toolbar.find_edit.setText("no such node")
    win.toolbar.find_node()
    assert "No node matches" in win.statusBar().currentMessage()
    qtbot.waitUntil(lambda: win.statusBar().currentMessage() == "", timeout=5000)


def test_history_survives_reloading_the_same_view_only(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    s = win.state
    node = s.graph.ids[3]
    with qtbot.waitSignal(s.evaluationChanged, timeout=LOAD_TIMEOUT_MS):
        s.toggle_nodes([node])
    before = s.history
    assert len(before) >= 2
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.reload_run()  # what recording an activation store does when it is done
    assert s.history[:len(before)] == before
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.load_task(task="bracket_counting")  # another task: a new history
    assert all(h.action != f"ablate {node}" for h in s.history)


# -- item 9: actions that cannot work are off --------------------------------------------------------
def test_toggle_ablation_needs_a_selected_node(qtbot, open_window, tiny_run: Path, errors) -> None:
    win = open_window(tiny_run)
    toggle = win.menu_actions.toggle
    assert win.state.selected is None and not toggle.isEnabled()
    win.state.select(win.state.graph.ids[0])
    assert toggle.isEnabled()
    win.state.select(None)
    assert not toggle.isEnabled() and "Select a node first" in toggle.statusTip()


def test_no_axes_or_legend_before_a_run_is_loaded(qtbot, errors) -> None:
    win = MainWindow(persist_settings=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    assert not win.view.plot.getAxis("left").isVisible() and not win.view.legend.isVisible()
    assert not win.tools.compare_view.plot.getAxis("left").isVisible()  # no result to plot yet
    curves = win.train_panel.curves
    assert not any(plot.getAxis("left").isVisible() for plot in curves.plots.values())  # no training yet
    curves.add_point(1, train_loss=2.5)
    assert curves.plots["loss"].getAxis("left").isVisible() and not curves.plots["lr"].getAxis("left").isVisible()
    curves.reset()
    assert not curves.plots["loss"].getAxis("left").isVisible()
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.open_default("demo")
    assert win.view.plot.getAxis("left").isVisible() and win.view.legend.isVisible()


# -- item 8: layout ----------------------------------------------------------------------------------
def test_docks_have_readable_minimum_widths(qtbot, errors) -> None:
    win = MainWindow(persist_settings=False)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    win.tools.compare_dock.show()
    win.tools.compare_dock.raise_()
    qtbot.waitExposed(win)
    for dock, least in ((win.runs_dock, 180), (win.tools.prune_dock, 180), (win.metrics_dock, 280),
                        (win.inspector_dock, 280)):
        assert dock.minimumWidth() >= least, dock.objectName()
    combo = win.tools.compare_view.dense_combo
    combo.setCurrentText("demo-dense")
    qtbot.waitUntil(lambda: combo.width() > QFontMetrics(combo.font()).horizontalAdvance("demo-dense"), timeout=5000)
    assert combo.lineEdit().width() >= QFontMetrics(combo.font()).horizontalAdvance("demo-dense")


def _dock_sizes(win: MainWindow) -> tuple[int, int, int]:
    return win.runs_dock.width(), win.metrics_dock.width(), win.log_dock.height()


def test_a_resized_layout_is_kept_and_view_reset_layout_restores_the_first(qtbot, isolated_qsettings: Path,
                                                                           errors) -> None:
    first = MainWindow()
    qtbot.addWidget(first)
    first.resize(790, 590)  # the offscreen screen is 800x600
    first.show()
    qtbot.waitExposed(first)
    fresh = _dock_sizes(first)
    first.resizeDocks([first.runs_dock, first.metrics_dock], [fresh[0] + 30, fresh[1] - 30], Qt.Orientation.Horizontal)
    first.resizeDocks([first.log_dock], [fresh[2] + 40], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: _dock_sizes(first) != fresh, timeout=5000)
    resized = _dock_sizes(first)
    first.tools.prune_dock.raise_()
    first.close()
    assert app_settings().value("main_window/state") is not None

    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    qtbot.waitExposed(second)
    qtbot.waitUntil(lambda: _dock_sizes(second) == resized, timeout=5000)
    assert not second.tools.prune_dock.visibleRegion().isEmpty()  # the raised tab too
    assert "Reset layout" in [a.text().replace("&", "") for a in second.menu_actions.view_menu.actions()]
    second.train_dock.show()
    second.menu_actions.reset_layout.trigger()
    assert not second.train_dock.isVisible()  # hidden until asked for, as at the first start
    assert (second.width(), second.height()) != (790, 590)
    assert second.tasks_dock.visibleRegion().isEmpty() is False  # Tasks on top of its tabs again


def test_ctrl_c_in_the_terminal_closes_like_quit(isolated_qsettings: Path, tmp_path: Path) -> None:
    """``circuit-inspector`` in its own process: SIGINT closes the window (the layout is saved), exit 0."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "XDG_CONFIG_HOME": str(isolated_qsettings), "QT_QPA_PLATFORM": "offscreen",
           "CIRCUIT_INSPECTOR_LOG": str(tmp_path / "log.txt")}
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "app.main", "--size", "1000x700"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "log.txt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)  # the Log dock's first line: the window is up and loading the demo
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    conf = isolated_qsettings / "CircuitInspector" / "CircuitInspector.conf"
    assert conf.exists() and "main_window" in conf.read_text(errors="replace"), out


# -- item 9: switching task keeps the run -------------------------------------------------------------
def test_switching_task_reuses_the_runs_cached_model_means_and_resample_pool(tiny_run_with_store: Path,
                                                                             tmp_path: Path, monkeypatch) -> None:
    from engine.ablation import setup
    from engine.scene.bundle import RunCache, SetupSpec, load_bundle

    run = Path(shutil.copytree(tiny_run_with_store, tmp_path / "run"))  # its store is touched below
    reads = []
    real = setup.resample_pool
    monkeypatch.setattr(setup, "resample_pool", lambda run, *a: reads.append(run.path) or real(run, *a))
    cache = RunCache()
    first, ablator = load_bundle(SetupSpec(run=str(run), task=TASK), cache)
    second, ablator2 = load_bundle(SetupSpec(run=str(run), task="bracket_counting"), cache)
    assert len(reads) == 1 and first.resample and second.resample
    assert second.model_graph is first.model_graph and second.means is first.means
    # The same numbers as an Ablator built from scratch (engine.ablation.setup.run_ablator).
    fresh, _ = setup.run_ablator(cache.run, second.task, second.circuit, n_pairs=second.spec.n_pairs)
    for mode in ("mean", "resample"):
        nodes = (second.model_graph.ids[5],)
        assert ablator2.evaluate(nodes, (), mode, "full").loss == pytest.approx(
            fresh.evaluate(nodes, (), mode, "full").loss, abs=1e-6)
    # A newly recorded store is read again.
    n = len(reads)
    store = first.store_path
    os.utime(store, ns=(store.stat().st_atime_ns, store.stat().st_mtime_ns + 1_000_000))
    load_bundle(SetupSpec(run=str(run), task=TASK), cache)
    assert len(reads) == n + 1
