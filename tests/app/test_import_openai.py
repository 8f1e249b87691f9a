"""File > Import OpenAI model…: the import runs as a background job, then the new run opens with
its imported circuit, whose final_resid nodes can be ablated live; a bad folder is a dialog and
writes nothing. Uses the OpenAI fixtures in ../shared/fixtures/openai (skips clearly without them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.widgets import dialogs
from app.widgets.import_dialog import ImportChoice, ImportDialog

LOAD_TIMEOUT_MS = 120_000
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures" / "openai"


def _fixtures() -> Path:
    if not (FIXTURES / "models").is_dir():
        pytest.skip(f"{FIXTURES.resolve()} not found: the OpenAI fixtures live in ../shared (CI has them)")
    return FIXTURES


def test_import_opens_the_model_and_its_circuit(qtbot, open_window, tiny_run: Path, tmp_path: Path, errors,
                                                monkeypatch) -> None:
    f = _fixtures()
    win = open_window(tiny_run)
    out = tmp_path / "fx_a"
    choice = ImportChoice(model_dir=f / "models" / "fx_a_tied_2L", out=out, tokenizer_dir=f / "tinypython",
                          circuits_dir=f / "viz" / "fx_a_tied_2L")
    monkeypatch.setattr(dialogs, "ask_import", lambda parent, start="": choice)
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as finished:
            win.menu_actions.import_openai.trigger()
    assert finished.args[0].status == "done", finished.args[0]
    b = win.state.bundle
    assert b.run_path == out and b.circuit is not None and b.circuit.name == "openai-prune_v2-16"
    assert b.circuit_graph.has_final and "final_resid:31" in b.circuit_graph.index
    log = win.log_panel.text.toPlainText()
    assert "import: done" in log and "1 circuit(s)" in log
    base = win.state.evaluation.result.loss
    with qtbot.waitSignal(win.state.evaluationChanged, timeout=LOAD_TIMEOUT_MS):
        win.state.toggle_nodes(["final_resid:31"])
    assert win.state.evaluation.result.loss != pytest.approx(base)
    assert errors == []


def test_a_folder_that_is_no_model_is_a_dialog_and_writes_nothing(qtbot, open_window, tiny_run: Path,
                                                                 tmp_path: Path, errors, monkeypatch) -> None:
    win = open_window(tiny_run)
    choice = ImportChoice(model_dir=tmp_path / "empty", out=tmp_path / "run")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(dialogs, "ask_import", lambda parent, start="": choice)
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as finished:
        win.menu_actions.import_openai.trigger()
    assert finished.args[0].status == "failed"
    assert errors and "not an OpenAI model folder" in errors[-1][1] and "Traceback" not in errors[-1][1]
    assert not (tmp_path / "run").exists() and win.state.bundle.run_path == tiny_run


def test_the_dialog_needs_a_model_and_an_output_folder(qtbot, tmp_path: Path) -> None:
    dialog = ImportDialog(None, str(tmp_path))
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert not ok.isEnabled()
    dialog.edits["model"].setText(str(tmp_path / "m"))
    assert not ok.isEnabled()
    dialog.edits["out"].setText(str(tmp_path / "r"))
    assert ok.isEnabled()
    assert dialog.choice() == ImportChoice(model_dir=tmp_path / "m", out=tmp_path / "r")
