"""Run by ``test_train_panel.test_closing_mid_job_exits_cleanly_in_a_subprocess`` (not a test itself).

The real app, offscreen, in its own process: open the Training panel, start a tiny training that would
take minutes, and close the window at its third step, answering the quit question "yes" (the question
goes through ``app.widgets.dialogs``, replaced here). After the event loop ends, print one JSON line: how long
``close()`` took, the questions asked and the steps the run's checkpoint holds, then exit like
``circuit-inspector`` does.

    python tests/app/close_mid_job_driver.py CORPUS_DIR OUT_DIR [PRESET]

CORPUS_DIR "" trains on the default corpus; PRESET (default ``tiny``) measures other presets.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(corpus: str, out: str, preset: str = "tiny") -> int:
    from app.widgets import dialogs
    from app.window.application import make_app
    from app.window.main_window import MainWindow

    app = make_app()
    asked: list[str] = []

    def yes(_parent, title: str, _text: str) -> bool:
        asked.append(title)
        return True

    dialogs.ask_yes_no = yes
    window = MainWindow(persist_settings=False)
    window.show()
    window.show_train_panel()
    window.train_panel.form.preset.setCurrentText(preset)
    window.train_panel.form.set_values({"steps": 1000, "corpus": corpus, "output": out})
    result: dict = {}

    def on_progress(_name: str, event) -> None:
        if event.kind == "step" and event.step >= 3 and "close_s" not in result:
            t0 = time.perf_counter()
            window.close()
            result["close_s"] = time.perf_counter() - t0
            result["job_after_close"] = window.jobs.running

    window.jobs.progress.connect(on_progress)
    window.train_panel.start_button.click()
    status = app.exec()
    window.shutdown()
    from engine import api

    result.update(asked=asked, steps_done=api.train_status(out).steps_done, exec_status=status)
    print(json.dumps(result), flush=True)
    return int(status)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
