"""Launch the app as a user would, in a subprocess: the screenshot mode and the friendly failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 180


def _env(settings_dir: Path, **overrides: str | None) -> dict[str, str]:
    """The test environment with ``overrides`` (``None`` removes a variable); settings kept in tmp."""
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(settings_dir)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _launch(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


def _assert_no_abort(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr}"
    for word in ("Aborted", "core dumped", "Traceback", "Could not load the Qt platform plugin"):
        assert word not in proc.stderr, proc.stderr


def test_screenshot_writes_png_of_requested_size(tmp_path: Path, isolated_qsettings: Path) -> None:
    out = tmp_path / "x.png"
    # No display at all: --screenshot must choose the offscreen platform by itself.
    env = _env(isolated_qsettings, DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    proc = _launch(["--screenshot", str(out), "--size", "1024x680"], env)
    _assert_no_abort(proc)
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    assert not image.isNull(), "the screenshot is not a decodable image"
    assert (image.width(), image.height()) == (1024, 680)
    # Not a blank picture: the graph area and the docks differ in colour.
    colours = {image.pixel(x, y) for x in range(0, 1024, 16) for y in range(0, 680, 16)}
    assert len(colours) > 3


def test_screenshot_of_a_run_with_a_session(tmp_path: Path, isolated_qsettings: Path, tiny_run: Path) -> None:
    """The smoke run of the real thing: a run, a session (an ablated node, a selection), the PNG."""
    session = tmp_path / "s.json"
    session.write_text(json.dumps({"kind": "session", "run": str(tiny_run), "ablated_nodes": ["blocks.0.attn.read:1"],
                                   "selected": "blocks.1.mlp.neuron:5", "pair": 1}))
    out = tmp_path / "run.png"
    proc = _launch(["--session", str(session), "--screenshot", str(out)], _env(isolated_qsettings))
    _assert_no_abort(proc)
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1400, 900)  # the default size
    colours = {image.pixel(x, y) for x in range(0, 1400, 10) for y in range(0, 900, 10)}
    assert len(colours) > 50  # a drawn graph, tables and text, not an empty window


def test_screenshot_of_a_config_only_folder_fails_cleanly(tmp_path: Path, isolated_qsettings: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"schema_version": 1, "model": {"n_layer": 2}}))
    out = tmp_path / "run.png"
    proc = _launch([str(run), "--screenshot", str(out)], _env(isolated_qsettings))
    _assert_no_abort(proc)
    assert proc.returncode == 2
    assert "error: Cannot open run" in proc.stderr
    assert not out.exists()


def test_bad_session_file_is_a_usage_error(tmp_path: Path, isolated_qsettings: Path) -> None:
    bad = tmp_path / "s.json"
    bad.write_text('{"kind": "session", "mode": "half"}')
    proc = _launch(["--session", str(bad), "--screenshot", str(tmp_path / "x.png")], _env(isolated_qsettings))
    _assert_no_abort(proc)
    assert proc.returncode == 2 and "mode must be one of" in proc.stderr


def test_screenshot_of_a_bad_run_dir_fails_cleanly(tmp_path: Path, isolated_qsettings: Path) -> None:
    out = tmp_path / "never.png"
    proc = _launch([str(tmp_path / "missing"), "--screenshot", str(out)], _env(isolated_qsettings))
    _assert_no_abort(proc)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "does not exist" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("where", ["parent_is_a_file", "path_is_a_directory"])
def test_unwritable_screenshot_path_returns_2(tmp_path: Path, isolated_qsettings: Path,
                                              where: str) -> None:
    if where == "parent_is_a_file":
        blocker = tmp_path / "a_file"
        blocker.write_text("x")
        out = blocker / "x.png"
    else:
        out = tmp_path / "a_dir.png"
        out.mkdir()
    proc = _launch(["--screenshot", str(out)], _env(isolated_qsettings))
    _assert_no_abort(proc)
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for Linux")
def test_no_display_returns_2_with_advice(isolated_qsettings: Path) -> None:
    env = _env(isolated_qsettings, DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    proc = _launch([], env)
    _assert_no_abort(proc)
    assert proc.returncode == 2
    assert "no display" in proc.stderr
    for advice in ("xvfb-run", "--screenshot", "QT_QPA_PLATFORM=offscreen"):
        assert advice in proc.stderr


def test_bad_size_is_a_usage_error(isolated_qsettings: Path) -> None:
    proc = _launch(["--screenshot", "x.png", "--size", "big"], _env(isolated_qsettings))
    assert proc.returncode == 2
    assert "WIDTHxHEIGHT" in proc.stderr


@pytest.mark.parametrize("argv, says", [
    (["--screenshot", "x.png", "--size", "big"], "WIDTHxHEIGHT"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--screen", "x.png"], "unrecognized arguments: --screen"),  # no abbreviated options
    (["--sess", "s.json"], "unrecognized arguments: --sess"),
    (["a", "b"], "unrecognized arguments: b"),
    (["export", "--format", "nope", "--out", "x"], "argument --format: invalid choice"),
    (["export", "RUN", "--form", "json", "--out", "x"], "the following arguments are required: --format"),
])
def test_argument_errors_are_one_error_line_and_exit_2(argv: list[str], says: str, capsys) -> None:
    """argparse's usage dump is replaced by one ``error:`` line, as in ``circuit-engine``."""
    from app import main as app_main

    assert app_main.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], captured.err
    assert "usage:" not in captured.err


def test_help_still_prints_usage_and_exits_0(capsys) -> None:
    from app import main as app_main

    assert app_main.main(["--help"]) == 0
    assert "usage: circuit-inspector" in capsys.readouterr().out


def test_missing_gui_extra_message(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Without PySide6/pyqtgraph importable, main() says which extra to install and returns 2."""
    from app import main as app_main

    monkeypatch.setattr(app_main, "gui_available", lambda: False)
    assert app_main.main(["--screenshot", "x.png"]) == 2
    assert "pip install 'circuit-inspector[gui]'" in capsys.readouterr().err


def test_gui_available_detects_missing_pyqtgraph(isolated_qsettings: Path) -> None:
    """A real import failure (pyqtgraph blocked) goes through the same message, not a traceback."""
    code = ("import sys; sys.modules['pyqtgraph'] = None; "
            "from app.main import main; sys.exit(main(['--screenshot', 'x.png']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(isolated_qsettings),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 2
    assert "error: the desktop app needs the gui extra" in proc.stderr


def test_console_script_exists_and_runs(tmp_path: Path, isolated_qsettings: Path) -> None:
    script = Path(sys.executable).with_name("circuit-inspector")
    if not script.exists():
        pytest.skip("the circuit-inspector console script is not installed next to this python")
    out = tmp_path / "script.png"
    proc = subprocess.run([str(script), "--screenshot", str(out), "--size", "1100x700"],
                          env=_env(isolated_qsettings), capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert QImage(str(out)).size().toTuple() == (1100, 700)
