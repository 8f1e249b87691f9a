"""A real window on a virtual X server: the closest thing to a person at the keyboard.

Starts ``Xvfb`` on a free display, launches ``python -m app.main`` there with the xcb platform (not
offscreen), waits for the window to appear (``xdotool search``), presses Ctrl+Q and expects a clean
exit with status 0. Skips itself when ``Xvfb`` or ``xdotool`` is missing (``.ci/run`` installs them
on Debian, together with the libxcb-* libraries Qt's xcb plugin needs).

Why ``windowfocus`` + ``key`` and not ``key --window ID``: with ``--window``, xdotool sends a
synthetic event (XSendEvent), which Qt ignores; without it, xdotool uses XTEST, which goes to the
focused window like a real keystroke. There is no window manager, so focus is set explicitly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WINDOW_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0
POLL_S = 0.1

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Xvfb is Linux-only"),
    pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (see .ci/run)"),
    pytest.mark.skipif(shutil.which("xdotool") is None,
                       reason="xdotool is not installed (see .ci/run)"),
]


def _poll(condition: Callable[[], object], timeout_s: float) -> object:
    """Call ``condition`` every POLL_S seconds until it returns something truthy or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(POLL_S)


def _x(display: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an X client tool against ``display``."""
    env = dict(os.environ, DISPLAY=display)
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=10)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def xvfb_display(tmp_path: Path) -> Iterator[str]:
    """A running Xvfb; yields its DISPLAY value (":N") and stops it afterwards."""
    for number in range(90, 100):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        display = f":{number}"
        log = open(tmp_path / f"xvfb{number}.log", "w")  # noqa: SIM115 (closed in finally)
        proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            # Ready when a client can talk to it; gone early when the number was taken after all.
            ready = _poll(lambda: proc.poll() is not None
                          or _x(display, "xdotool", "getdisplaygeometry").returncode == 0, 10)
            if ready and proc.poll() is None:
                yield display
                return
        finally:
            _stop(proc)
            log.close()
    pytest.skip("no free X display number in :90-:99, or Xvfb did not start")


def _find_window(display: str, title: str) -> str | None:
    found = _x(display, "xdotool", "search", "--onlyvisible", "--name", f"^{title}$")
    ids = found.stdout.split()
    return ids[-1] if found.returncode == 0 and ids else None


def test_real_window_opens_and_ctrl_q_quits(xvfb_display: str, tmp_path: Path) -> None:
    env = dict(os.environ, DISPLAY=xvfb_display, XDG_CONFIG_HOME=str(tmp_path / "config"))
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    log_path = tmp_path / "app.log"
    app = None
    with open(log_path, "w") as log:
        try:
            app = subprocess.Popen([sys.executable, "-m", "app.main"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)

            window_id = _poll(lambda: app.poll() is not None
                              or _find_window(xvfb_display, "Circuit Inspector"), WINDOW_TIMEOUT_S)
            assert app.poll() is None, f"the app exited early:\n{log_path.read_text()}"
            assert isinstance(window_id, str), f"no window appeared:\n{log_path.read_text()}"

            if shutil.which("import"):  # ImageMagick: a picture of the whole screen
                shot = tmp_path / "root.png"
                _x(xvfb_display, "import", "-window", "root", str(shot))
                assert shot.exists() and shot.stat().st_size > 0

            # Press Ctrl+Q like a person would; repeat if the first press came before the window
            # could take keyboard focus.
            _quit_with_ctrl_q(xvfb_display, window_id, app, wait_s=2)
            assert app.poll() is not None, "Ctrl+Q did not close the app"
            assert app.returncode == 0, f"exit status {app.returncode}:\n{log_path.read_text()}"
            assert "Aborted" not in log_path.read_text()
            # Closing saved the window geometry into the test's own settings folder.
            assert (tmp_path / "config" / "CircuitInspector" / "CircuitInspector.conf").exists()
        finally:
            _stop(app)


def _loss_lines(log: Path) -> list[tuple[str, float]]:
    """(action, loss) of every "ACTION: loss X, accuracy Y" line the Log dock wrote."""
    import re

    if not log.exists():
        return []
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(.*): loss ([0-9.]+), accuracy", line)
        if m:
            out.append((m.group(1), float(m.group(2))))
    return out


def test_keyboard_find_toggle_changes_the_metric(xvfb_display: str, tmp_path: Path, tiny_run: Path) -> None:
    """Like a person: / to find a node, type its id, Enter, A to ablate it; the loss changes."""
    import json

    node = "blocks.0.attn.read:1"
    session = tmp_path / "s.json"
    # On top of the full model (the tiny random circuit alone is flat: every ablation would read ~ln 2).
    session.write_text(json.dumps({"kind": "session", "run": str(tiny_run), "baseline": "full"}))
    log = tmp_path / "log.txt"
    env = dict(os.environ, DISPLAY=xvfb_display, XDG_CONFIG_HOME=str(tmp_path / "config"),
               CIRCUIT_INSPECTOR_LOG=str(log))
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    app = None
    out = tmp_path / "app.log"
    with open(out, "w") as app_log:
        try:
            app = subprocess.Popen([sys.executable, "-m", "app.main", "--session", str(session)], cwd=REPO,
                                   env=env, stdout=app_log, stderr=subprocess.STDOUT)
            window_id = _poll(lambda: app.poll() is not None
                              or _find_window(xvfb_display, ".*Circuit Inspector"), WINDOW_TIMEOUT_S)
            assert app.poll() is None and isinstance(window_id, str), out.read_text()
            # Wait until the run is loaded and the baseline on the full model is shown.
            assert _poll(lambda: any("full model" in a for a, _ in _loss_lines(log)), 120), log.read_text()
            before = [loss for a, loss in _loss_lines(log) if "full model" in a][-1]

            def typed_and_ablated() -> bool:
                _x(xvfb_display, "xdotool", "windowfocus", "--sync", window_id)
                _x(xvfb_display, "xdotool", "key", "--clearmodifiers", "slash")
                _x(xvfb_display, "xdotool", "key", "ctrl+a")
                _x(xvfb_display, "xdotool", "type", "--delay", "5", node)
                _x(xvfb_display, "xdotool", "key", "Return")
                _x(xvfb_display, "xdotool", "key", "a")
                return bool(_poll(lambda: any(a == f"ablate {node}" for a, _ in _loss_lines(log)), 15))

            assert _poll(typed_and_ablated, 60), log.read_text()
            after = [loss for a, loss in _loss_lines(log) if a == f"ablate {node}"][-1]
            assert after != before

            _quit_with_ctrl_q(xvfb_display, window_id, app, wait_s=5)
            assert app.returncode == 0, out.read_text()
            assert "Aborted" not in out.read_text() and "Traceback" not in out.read_text()
        finally:
            _stop(app)


def test_typing_through_a_run_folder_keeps_the_training_form(xvfb_display: str, tmp_path: Path) -> None:
    """Issue 15.5 like a person: Steps is 3000, then ``.../runs/tiny2`` is typed into "Output run" key by
    key, passing ``.../runs/tiny``, an existing run's folder (150 steps, 3 layers). The form keeps its
    edits all the way, and Start would train 3000 steps."""
    import json

    from engine import api
    from engine.fileio import atomic_write_json

    tiny = tmp_path / "runs" / "tiny"
    tiny.mkdir(parents=True)
    atomic_write_json(tiny / "config.json",
                      api.make_config("tiny", steps=150, overrides=["model.n_layer=3"]).to_dict())
    target = str(tmp_path / "runs" / "tiny2")
    env = dict(os.environ, DISPLAY=xvfb_display, XDG_CONFIG_HOME=str(tmp_path / "config"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    app = None
    try:
        app = subprocess.Popen([sys.executable, str(Path(__file__).with_name("train_form_driver.py")), target],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        while not lines or lines[-1].strip() != "READY":
            line = app.stdout.readline()
            assert line, "the app ended before the form was ready:\n" + "".join(lines)
            lines.append(line)
        dock = _poll(lambda: _find_window(xvfb_display, "Training"), WINDOW_TIMEOUT_S)
        assert isinstance(dock, str), "the Training dock did not appear"
        _x(xvfb_display, "xdotool", "windowfocus", "--sync", dock)
        _x(xvfb_display, "xdotool", "type", "--delay", "20", target)
        out, _ = app.communicate(timeout=120)
        assert app.returncode == 0, "".join(lines) + out
        report = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
        assert report["output"] == target, report  # every key arrived
        assert report["steps"] == 3000 and report["n_layer"] == 2 and report["start_steps"] == 3000, report
        assert set(report["seen"]["steps"]) == {3000}, report  # not even for a moment at the run's 150
        assert any(str(tiny) in text and "Load its config" in text for text in report["seen"]["status"]), report
    finally:
        _stop(app)


def _quit_with_ctrl_q(display, window_id: str, app: subprocess.Popen, wait_s: float) -> None:
    """Press Ctrl+Q like a person would; repeat if a press came before the window could take focus."""
    def pressed_and_exited() -> bool:
        _x(display, "xdotool", "windowfocus", "--sync", window_id)
        _x(display, "xdotool", "key", "--clearmodifiers", "ctrl+q")
        try:
            app.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    _poll(pressed_and_exited, EXIT_TIMEOUT_S)
