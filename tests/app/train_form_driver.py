"""Run by ``test_xvfb_window.test_typing_through_a_run_folder_keeps_the_training_form`` (not a test).

The real window on the X display in ``DISPLAY`` (xcb, not offscreen): the Training panel is opened
(Ctrl+T does the same), Steps is set to 3000 and the keyboard focus is put into the empty "Output run"
field; then ``READY`` is printed and the test types a path with xdotool, keystroke by keystroke.
When the field holds ``TARGET`` (and nothing has been typed for a moment), one JSON line reports the
form as it is (Steps, layers, the steps Start would train, the field) and every Steps value and
status line seen while typing, and the app quits.

    python tests/app/train_form_driver.py TARGET
"""

from __future__ import annotations

import json
import sys

DEADLINE_MS = 90_000
SETTLE_MS = 500


def main(target: str) -> int:
    from PySide6.QtCore import QTimer

    from app.window.application import make_app
    from app.window.main_window import MainWindow

    app = make_app()
    window = MainWindow(persist_settings=False)
    window.resize(1200, 800)
    window.show()
    panel, form = window.train_panel, window.train_panel.form
    seen: dict[str, list] = {"steps": [], "status": []}

    def on_changed() -> None:
        seen["steps"].append(form.values()["steps"])
        seen["status"].append(panel.status.text())

    def prepare() -> None:
        window.show_train_panel()  # imports the engine and fills the form with the tiny preset
        form.set_values({"steps": 3000, "output": ""})
        form.changed.connect(on_changed)
        window.train_dock.activateWindow()
        form.output.setFocus()
        print("READY", flush=True)

    def report() -> None:
        print(json.dumps({"steps": form.values()["steps"], "n_layer": form.values()["n_layer"],
                          "start_steps": panel.config().train.steps, "output": form.values()["output"],
                          "seen": seen}), flush=True)
        window.close()

    settle = QTimer(window)
    settle.setSingleShot(True)
    settle.setInterval(SETTLE_MS)
    settle.timeout.connect(report)
    form.output.textChanged.connect(lambda text: settle.start() if text == target else settle.stop())
    window.firstPaint.connect(lambda: QTimer.singleShot(0, prepare))
    QTimer.singleShot(DEADLINE_MS, window.close)
    status = app.exec()
    window.shutdown()
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
