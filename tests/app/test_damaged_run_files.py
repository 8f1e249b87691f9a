"""Damaged files of a run opened in the app (issue 19, item 11): a garbage ``labels.json`` or
``activations.h5`` is told to the user once (a warning box naming the file, a Log line), the file is
kept byte for byte, the run works; bad bytes in ``train_log.jsonl`` are skipped and said in the
Training panel; nothing prints a traceback.

pytest-qt, offscreen, a tiny real run; waits are on signals, never sleeps.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.window.main_window import MainWindow
from conftest import LOAD_TIMEOUT_MS, TASK

GARBAGE = b"\xff\xfe\x80 not what it should be \x00\x01" * 40


def test_a_garbage_labels_file_is_told_kept_and_the_run_works(fresh_tiny_run: Path, open_window, qtbot, errors,
                                                              warnings_shown, capfd) -> None:
    labels = fresh_tiny_run / "labels.json"  # a writable run keeps its derived files in its folder
    labels.write_bytes(GARBAGE)
    win = open_window(fresh_tiny_run)
    assert win.state.bundle.derived == fresh_tiny_run
    [(title, text)] = warnings_shown
    assert title == "Damaged file in run" and str(labels) in text and "not UTF-8" in text and "kept" in text
    assert "\n" not in text and errors == []
    assert f"warning: labels file {labels}" in win.log_panel.text.toPlainText()
    assert labels.read_bytes() == GARBAGE
    # The run works: the circuit's labels are shown and a click ablates.
    assert win.state.evaluation is not None and win.state.graph.n_nodes > 0
    # Another task of the same run says nothing again.
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        win.load_task(TASK)
    assert len(warnings_shown) == 1
    # A new label keeps the damaged file beside the new one.
    win.state.set_label(win.state.graph.ids[0], "mine")
    assert (fresh_tiny_run / "labels.json.damaged").read_bytes() == GARBAGE
    assert "Traceback" not in capfd.readouterr().err


def test_a_garbage_activation_store_is_told_kept_and_the_run_works(fresh_tiny_run: Path, open_window, errors,
                                                                   warnings_shown, capfd) -> None:
    store = fresh_tiny_run / "activations.h5"
    store.write_bytes(GARBAGE)
    win = open_window(fresh_tiny_run)
    [(title, text)] = warnings_shown
    assert title == "Damaged file in run" and str(store) in text and "Record activation store" in text
    assert errors == [] and store.read_bytes() == GARBAGE
    assert win.controller.store is None and win.state.evaluation is not None
    assert str(store) in win.inspector.no_store_text.text()  # the inspector says why it has no examples
    assert "Traceback" not in capfd.readouterr().err


def test_bad_bytes_in_the_training_log_are_skipped_and_said(tiny_run: Path, tmp_path: Path, qtbot, errors,
                                                           capfd) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    log = run / "train_log.jsonl"
    damaged = (b'{"step": 1, "kind": "step", "train_loss": 2.5}\n' + GARBAGE + b"\n[1, 2]\n"
               + b'{"step": 2, "kind": "eval", "train_loss": 2.0, "val_loss": 2.1}\n{"step": 3, "tr')
    log.write_bytes(damaged)
    win = MainWindow(persist_settings=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.show_train_panel()
    panel = win.train_panel
    panel.form.output.setText(str(run))
    status = panel.status.text()
    assert f"{run} holds a run" in status and "2 damaged lines of its train_log.jsonl were skipped" in status
    assert log.read_bytes() == damaged and errors == []
    assert "Traceback" not in capfd.readouterr().err
