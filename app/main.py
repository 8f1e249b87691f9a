"""``circuit-inspector``: start the desktop app, render it offscreen to a PNG, or benchmark it.

    circuit-inspector [RUN_DIR] [--session S.json] [--screenshot FILE] [--size WxH]
    circuit-inspector --bench-graph [--json]
    circuit-inspector --bench-export [--json]
    circuit-inspector export RUN --format png|svg|graphml|json|csv --out OUT [options]   (app.export.command)

Without RUN_DIR (and without a session naming a run) the app opens the bundled demo model with its
``single_double_quote`` circuit. ``--screenshot`` starts offscreen, waits until the graph and the
metrics are drawn, saves the window as PNG and exits 0 (2 on any error). ``--bench-graph`` measures
launch-to-first-paint, frame time while panning the whole-model view at 100k and 1M edges, and
click-to-metric latency (see :mod:`app.bench`).

Qt is imported only inside :func:`main`, after two checks that turn Qt's hard aborts into a clear
message and exit status 2: the gui extra (PySide6, pyqtgraph) must be installed, and on Linux there
must be a display (or ``--screenshot``/``--bench-graph``, which select Qt's offscreen platform).
A mistake in the arguments is one ``error: ...`` line and exit status 2 (no usage dump); options
are never abbreviated (:class:`engine.errors.OneLineArgumentParser`, shared with ``circuit-engine``).
The engine (and torch) is imported by the ablation worker after the window's first paint.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from engine.allocator import keep_freed_memory

EXIT_OK = 0
EXIT_USAGE = 2
DEFAULT_SIZE = (1400, 900)
# After the window says it is ready: event-loop turns before grabbing it, and the gap between turns
# (ms). Layouts, the pyqtgraph view range and the first paint each need a turn or two.
SCREENSHOT_TURNS = 5
SCREENSHOT_TURN_MS = 30
SCREENSHOT_TIMEOUT_S = 180
DEFAULT_RUN = "demo"

GUI_EXTRA_MESSAGE = "error: the desktop app needs the gui extra: pip install 'circuit-inspector[gui]'"
NO_DISPLAY_MESSAGE = """\
error: no display found (DISPLAY and WAYLAND_DISPLAY are not set), so the window cannot open.
Try one of:
  - run circuit-inspector from a desktop session (or ssh -X / -Y with X forwarding);
  - xvfb-run circuit-inspector                  (a virtual X display);
  - circuit-inspector --screenshot out.png      (render the window offscreen to a PNG);
  - QT_QPA_PLATFORM=offscreen circuit-inspector (run without any visible window)."""


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``1400x900``) into positive ints; argparse turns errors into one ``error:`` line."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1400x900, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= 16384 and 1 <= height <= 16384):
        raise argparse.ArgumentTypeError(f"size must be between 1x1 and 16384x16384, got {text!r}")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    from engine.errors import OneLineArgumentParser  # torch-free: the window still paints first

    parser = OneLineArgumentParser(
        prog="circuit-inspector",
        description="Inspect weight-sparse transformer circuits: open a run folder and explore it.",
        epilog="Headless export of a circuit view (png, svg, graphml, json, csv): circuit-inspector export --help "
               "(a run folder named 'export' opens as ./export).",
    )
    parser.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                        help="a run folder (with config.json) to open at start")
    parser.add_argument("--screenshot", type=Path, metavar="FILE",
                        help="render the window offscreen, save it as a PNG to FILE and exit "
                             "(needs no display)")
    parser.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                        help="window size, e.g. 1400x900 (default for --screenshot: 1400x900)")
    parser.add_argument("--session", type=Path, metavar="S.json",
                        help="a session file (run, circuit, view, ablations, labels, zoom, selection) to restore")
    parser.add_argument("--bench-graph", action="store_true",
                        help="measure first paint, panning frame time at 100k/1M edges and click-to-metric")
    parser.add_argument("--bench-export", action="store_true",
                        help="time each export format of the demo's circuit and whole-model views, then exit")
    parser.add_argument("--run", type=Path, metavar="RUN_DIR", dest="bench_run",
                        help="with --bench-graph/--bench-export: the run to measure (default demo; same as RUN_DIR)")
    parser.add_argument("--json", action="store_true", help="with --bench-graph/--bench-export: print one JSON line")
    return parser


def has_display(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Qt can pick a platform without aborting: always off Linux/BSD; there, a display
    variable or an explicit ``QT_QPA_PLATFORM`` is needed."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return True
    return any(env.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def gui_available() -> bool:
    """Whether PySide6 (widgets) and pyqtgraph import."""
    try:
        import pyqtgraph  # noqa: F401
        from PySide6 import QtWidgets  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``circuit-inspector`` console script; returns the exit status.
    ``circuit-inspector export ...`` is the headless exporter (:mod:`app.export.command`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        from app.export.command import main as export_main

        return export_main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error already printed as one `error:` line (2)
        return int(exc.code or 0)
    if args.screenshot is not None or args.bench_graph or args.bench_export:
        # Must happen before Qt is imported: the platform is chosen when QApplication starts.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if not gui_available():
        print(GUI_EXTRA_MESSAGE, file=sys.stderr)
        return EXIT_USAGE
    if not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return EXIT_USAGE
    keep_freed_memory()  # a click's activations stay mapped for the next one (engine/allocator.py)
    session = None
    if args.session is not None:
        from engine.scene.session import SessionError, read_session

        try:
            # The window applies what it can and says what it left out; a headless screenshot must show
            # exactly the session asked for, so a bad value there is an error (as in `export --session`).
            session = read_session(args.session, drop_invalid=args.screenshot is None)
        except SessionError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    bench_run = args.bench_run or args.run_dir
    bench_run = None if bench_run is None else str(bench_run)
    if args.bench_graph:
        from app.bench import main as bench_main

        return bench_main(as_json=args.json, run=bench_run)
    if args.bench_export:
        from app.bench import main_export

        return main_export(as_json=args.json, run=bench_run)
    run = str(args.run_dir) if args.run_dir is not None else (session.run if session and session.run else None)
    if args.screenshot is not None:
        return _screenshot(run, args.screenshot, args.size or DEFAULT_SIZE, session)
    return _run_gui(run, args.size, session)


def _run_gui(run: str | None, size: tuple[int, int] | None, session=None) -> int:
    """Show the window and run the event loop until it closes. Without a run: the bundled demo."""
    from app.window.main_window import MainWindow

    from app.window.application import make_app

    app = make_app()
    window = MainWindow(session=session)
    _close_on_signals(window)
    if size is not None:
        window.resize(*size)
    if os.environ.get("CIRCUIT_INSPECTOR_BENCH_STARTUP"):
        _report_startup(app, window)
    window.show()
    # After show(): loading starts after the first paint and its errors get a visible parent.
    if run is not None:
        window.load_run(run, task=session.task if session else None,
                        task_file=session.task_file if session else None,
                        circuit=session.circuit if session else None)
    else:
        window.open_default(DEFAULT_RUN)
    status = int(app.exec())
    window.shutdown()
    return status


def _close_on_signals(window) -> None:
    """Ctrl+C in the terminal (SIGINT) or SIGTERM closes the window like File > Quit, so the layout
    is saved as on any other quit (a job still running asks first); a second Ctrl+C ends the app at
    once. Qt's event loop runs no Python code by itself: a timer gives Python a turn to see the
    signal."""
    import signal

    from PySide6.QtCore import QTimer

    def close(signum, _frame) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        QTimer.singleShot(0, window, window.close)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, close)
    tick = QTimer(window)
    tick.timeout.connect(lambda: None)
    tick.start(200)


def _report_startup(app, window) -> None:
    """For ``--bench-graph``: print the wall-clock time of the first paint and of readiness as JSON
    lines, then quit once ready."""
    import json
    import time

    def report(event: str) -> None:
        print(json.dumps({"event": event, "t": time.time()}), flush=True)
        if event == "ready":
            window.close()

    window.firstPaint.connect(lambda: report("first_paint"))
    window.ready.connect(lambda: report("ready"))


def _offscreen_message_filter(_mode, _context, message: str) -> None:
    """Qt message handler for --screenshot: drop the offscreen plugin's harmless notices."""
    if "does not support propagateSizeHints" in message:
        return
    print(message, file=sys.stderr)


class _Screenshot:
    """Drives one offscreen screenshot: waits for the window's ``ready``, lets the event loop turn a
    few times, grabs the window and quits; any error the window reports ends it with status 2."""

    def __init__(self, app, window, out: Path, errors: list[str]) -> None:
        self.app, self.window, self.out, self.errors = app, window, out, errors
        self.status = EXIT_OK

    def fail(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        self.status = EXIT_USAGE
        self.window.close()
        self.app.quit()

    def grab_and_quit(self) -> None:
        if not self.window.grab().save(str(self.out), "PNG"):
            print(f"error: cannot write screenshot {self.out} (permission denied or disk full?)", file=sys.stderr)
            self.status = EXIT_USAGE
        self.window.close()
        self.app.quit()

    def turn(self, remaining: int) -> None:
        from PySide6.QtCore import QTimer

        if self.errors:
            self.fail(self.errors[-1])
        elif remaining <= 0:
            self.grab_and_quit()
        else:
            QTimer.singleShot(SCREENSHOT_TURN_MS, self.window, lambda: self.turn(remaining - 1))

    def check_errors(self) -> None:
        if self.errors and self.status == EXIT_OK:
            self.fail(self.errors[-1])

    def start(self, waiting: bool) -> None:
        """Grab once the window is ready (or at once when there is nothing to load)."""
        from PySide6.QtCore import QTimer

        if not waiting:
            QTimer.singleShot(0, self.window, lambda: self.turn(SCREENSHOT_TURNS))
            return
        self.window.ready.connect(lambda: self.turn(SCREENSHOT_TURNS))
        poll = QTimer(self.window)
        poll.timeout.connect(self.check_errors)
        poll.start(100)
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, self.window,
                          lambda: self.fail(f"the window was not ready after {SCREENSHOT_TIMEOUT_S} s"))


def _screenshot(run: str | None, out: Path, size: tuple[int, int], session=None) -> int:
    """Build the window offscreen at ``size``, load the run (default: the demo), wait until the graph
    and metrics are drawn, save the window as PNG to ``out``."""
    from PySide6.QtCore import qInstallMessageHandler

    from app.window.main_window import MainWindow

    out = out.expanduser()
    if not out.parent.is_dir():
        print(f"error: cannot write screenshot {out}: folder {out.parent} does not exist",
              file=sys.stderr)
        return EXIT_USAGE

    qInstallMessageHandler(_offscreen_message_filter)
    from app.window.application import make_app

    app = make_app()
    errors: list[str] = []
    window = MainWindow(persist_settings=False, session=session, deterministic=True,
                        error_handler=lambda _parent, title, text: errors.append(f"{title}: {text}"),
                        warning_handler=lambda _parent, _title, text: print(f"warning: {text}", file=sys.stderr))
    window.resize(*size)
    shot = _Screenshot(app, window, out, errors)
    if run is not None and not window.load_run(run, task=session.task if session else None,
                                               task_file=session.task_file if session else None,
                                               circuit=session.circuit if session else None):
        print(f"error: {errors[-1]}", file=sys.stderr)
        window.shutdown()  # the worker threads must end before Python drops them
        return EXIT_USAGE
    waiting = run is not None or window.open_default(DEFAULT_RUN)
    window.show()
    shot.start(waiting)
    app.exec()
    window.shutdown()
    return shot.status


if __name__ == "__main__":
    sys.exit(main())
