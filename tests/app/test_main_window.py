"""The main window in-process (pytest-qt, offscreen): docks, menus, shortcuts, errors, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QTreeWidget

from app.widgets import dialogs
from app.window.main_window import WINDOW_TITLE, MainWindow, app_settings

CONFIG = {
    "schema_version": 1,
    "model": {"n_layer": 2, "d_model": 64, "n_head": 4, "tied": False, "sinks": None},
    "sparsity": {"k_per_layer": [8, 16]},
}
LOAD_TIMEOUT_MS = 120_000


@pytest.fixture
def config_only_run(tmp_path: Path) -> Path:
    """A folder with a config.json and nothing else: shown at once, then refused by the engine."""
    folder = tmp_path / "tiny_run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    return folder


@pytest.fixture
def window(qtbot, errors) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    return win


def test_window_builds_with_title_docks_and_empty_state(window: MainWindow, qtbot) -> None:
    window.show()
    qtbot.waitExposed(window)
    assert window.windowTitle() == WINDOW_TITLE
    names = {d.objectName(): d for d in window.findChildren(QDockWidget)}
    assert set(names) == {"runDock", "taskDock", "metricsDock", "inspectorDock", "logDock", "trainDock", "pruneDock",
                          "formationDock", "compareDock", "effectsDock"}
    assert not names["trainDock"].isVisible()  # File > Train a model... (Ctrl+T) opens it
    assert window.dockWidgetArea(names["runDock"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert window.dockWidgetArea(names["metricsDock"]) == Qt.DockWidgetArea.RightDockWidgetArea
    assert window.dockWidgetArea(names["logDock"]) == Qt.DockWidgetArea.BottomDockWidgetArea
    assert "No run loaded" in window.view.header.text()
    assert "No run loaded" in window.statusBar().currentMessage()
    assert window.run_panel.tree.topLevelItemCount() == 0
    assert window.runs.list.count() >= 3  # bundled demo entries and the recent section


def test_menu_actions_have_shortcuts(window: MainWindow) -> None:
    a = window.menu_actions
    shortcuts = {
        a.open_session: "Ctrl+O", a.open_run: "Ctrl+Shift+O", a.export: "Ctrl+E",
        a.quit: "Ctrl+Q", a.fit: "F",
        a.find: "/", a.toggle: "A", a.undo: "Ctrl+Z",
        a.redo: "Ctrl+Shift+Z", a.clear: "Esc", a.save_session: "Ctrl+S",
        a.train: "Ctrl+T",
    }
    for action, keys in shortcuts.items():
        assert action.shortcut().toString() == keys
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Ablation", "View", "Circuits"]


def test_config_shows_at_once_and_an_unloadable_run_is_reported(window: MainWindow, qtbot,
                                                               config_only_run: Path, errors) -> None:
    with qtbot.waitSignal(window.service.setupFailed, timeout=LOAD_TIMEOUT_MS):
        assert window.load_run(config_only_run) is True
        panel = window.run_panel  # filled before the engine has even looked at the run
        assert panel.find_value("model", "n_layer") == "2"
        assert panel.find_value("model", "tied") == "false"
        assert panel.find_value("model", "sinks") == "null"
        assert panel.find_value("sparsity", "k_per_layer", "[1]") == "16"
        assert "2 layers" in panel.summary_label.text()
    assert len(errors) == 1 and errors[0][0] == "Cannot open run"
    assert window.state.bundle is None


@pytest.mark.parametrize("problem", ["missing", "no_config", "bad_json", "not_object", "a_file", "not_utf8",
                                     "deep", "config_folder"])
def test_bad_run_dir_reports_error_and_window_survives(
    window: MainWindow, config_only_run: Path, tmp_path: Path, errors, problem: str, qtbot
) -> None:
    window.show()
    bad = tmp_path / "bad"
    if problem != "missing":
        bad.mkdir()
    if problem == "bad_json":
        (bad / "config.json").write_text("{not json", encoding="utf-8")
    elif problem == "not_object":
        (bad / "config.json").write_text("[1, 2]", encoding="utf-8")
    elif problem == "a_file":
        bad = tmp_path / "file.txt"
        bad.write_text("x", encoding="utf-8")
    elif problem == "not_utf8":  # read by the engine's hardened reader: a dialog, not a traceback
        (bad / "config.json").write_bytes(b'{"model": "\xff\xfe"}')
    elif problem == "deep":
        (bad / "config.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    elif problem == "config_folder":
        (bad / "config.json").mkdir()

    assert window.load_run(bad) is False
    assert len(errors) == 1
    title, text = errors[0]
    assert title == "Cannot open run" and str(bad) in text
    said = {"not_utf8": "not UTF-8", "deep": "nests arrays or objects", "bad_json": "not valid JSON"}
    assert said.get(problem, "") in text
    assert window.isVisible()
    assert "Could not open" in window.statusBar().currentMessage()


def test_open_action_uses_folder_dialog(window: MainWindow, tiny_run: Path, monkeypatch, errors, qtbot) -> None:
    asked: list[str] = []

    def fake_ask(parent, start_dir=""):
        asked.append(start_dir)
        return tiny_run

    monkeypatch.setattr(dialogs, "ask_run_dir", fake_ask)
    with qtbot.waitSignal(window.ready, timeout=LOAD_TIMEOUT_MS):
        window.menu_actions.open_run.trigger()
    assert asked and window.run_dir == tiny_run.resolve()
    assert window.state.bundle.task.name == "single_double_quote"
    assert "run" in window.windowTitle() and "single_double_quote" in window.windowTitle()
    # Recent runs remember it.
    assert str(tiny_run.resolve()) in window.recent_runs()

    monkeypatch.setattr(dialogs, "ask_run_dir", lambda parent, start_dir="": None)  # cancelled
    window.menu_actions.open_run.trigger()
    assert window.run_dir == tiny_run.resolve() and errors == []


def test_task_picker_switches_task(window: MainWindow, tiny_run: Path, qtbot, errors) -> None:
    with qtbot.waitSignal(window.ready, timeout=LOAD_TIMEOUT_MS):
        window.load_run(tiny_run)
    names = [window.tasks.list.item(i).text() for i in range(window.tasks.list.count())]
    assert any(n.startswith("● single_double_quote") for n in names)
    other = next(i for i in range(window.tasks.list.count()) if "bracket_counting" in window.tasks.list.item(i).text())
    with qtbot.waitSignal(window.state.bundleChanged, timeout=LOAD_TIMEOUT_MS):
        window.tasks.list.itemClicked.emit(window.tasks.list.item(other))
    assert window.state.bundle.task.name == "bracket_counting"
    assert window.state.bundle.circuit is None and window.state.view == "model"
    assert errors == []


def test_quit_action_closes_window(window: MainWindow, qtbot) -> None:
    window.show()
    qtbot.waitExposed(window)
    window.menu_actions.quit.trigger()
    assert not window.isVisible()


def test_geometry_and_docks_persist_in_isolated_settings(qtbot, isolated_qsettings: Path, errors) -> None:
    first = MainWindow()
    qtbot.addWidget(first)
    first.resize(760, 500)  # the offscreen screen is 800x600 (the docks' minimum sizes win below that)
    first.show()
    qtbot.waitExposed(first)
    size = (first.width(), first.height())
    first.close()
    assert app_settings().value("main_window/geometry") is not None
    assert app_settings().value("main_window/state") is not None
    # Settings went to the test's folder, not the user's ~/.config.
    assert str(isolated_qsettings) in app_settings().fileName()

    second = MainWindow()
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == size and size[0] == 760


def test_screenshot_mode_does_not_touch_settings(qtbot, errors) -> None:
    win = MainWindow(persist_settings=False)
    qtbot.addWidget(win)
    win.show()
    win.close()
    assert app_settings().value("main_window/geometry") is None


def test_tree_is_a_qtreewidget_with_key_value_columns(window: MainWindow) -> None:
    tree = window.findChild(QTreeWidget, "runConfigTree")
    assert tree is not None
    assert [tree.headerItem().text(i) for i in range(2)] == ["Key", "Value"]
