"""The Compare view and the Formation panel on two tiny trained runs (sparse and its dense twin,
20 steps with a checkpoint every 10): plots and tables fill from a background comparison, the
formation slider loads each checkpoint's circuit with that checkpoint's weights, and bad inputs
(another tokenizer, no checkpoints) end in a dialog while the window keeps working."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.panels import job_box

LOAD_TIMEOUT_MS = 120_000
TASK = "single_double_quote"
FAST = {"k_coefs": (0.01,), "train_pairs": 32, "val_pairs": 16, "batch_pairs": 8}
SAMPLE = '''
def greet(name, greeting="hello"):
    message = f"{greeting}, {name}!"
    table = {"a": 1, 'b': 2}
    items = [[1, 2], [3, 4]]
    return message
'''


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> tuple[Path, Path]:
    from engine import api
    from engine.train.loop import run_to_end

    root = tmp_path_factory.mktemp("twins")
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(8):
        (corpus / f"m{i}.py").write_text(SAMPLE.replace("greet", f"greet_{i}") * 8)
    cfg = api.make_config("tiny", steps=20, corpus=[str(corpus)],
                          overrides=["train.checkpoint_interval=10", "train.eval_interval=10"])
    run_to_end(api.train(root / "sparse", cfg))
    run_to_end(api.train(root / "dense", replace(cfg, sparsity=replace(cfg.sparsity, enabled=False))))
    for run in (root / "sparse", root / "dense"):  # ablation means once here, not in every test's copy
        for step in (None, 10, 20):
            api.load_means(api.load_run(run, checkpoint=step))
    return root / "sparse", root / "dense"


@pytest.fixture
def runs(twins, tmp_path) -> tuple[Path, Path]:
    """Private copies (the tests write circuits into them)."""
    return tuple(Path(shutil.copytree(r, tmp_path / r.name)) for r in twins)


@pytest.fixture(autouse=True)
def fast_pruning(monkeypatch):
    monkeypatch.setattr(job_box, "FIXED_SETTINGS", FAST)


def task_loss(run: Path, checkpoint: int | None = None) -> float:
    from engine import api

    r = api.load_run(run, checkpoint=checkpoint)
    ablator, _ = api.run_ablator(r, api.get_task(TASK), n_pairs=FAST["val_pairs"])
    return ablator.evaluate((), (), "mean", "full").loss


def test_compare_view_plots_both_models(qtbot, open_window, runs, errors) -> None:
    sparse, dense = runs
    win = open_window(sparse)
    view = win.tools.compare_view
    assert view.chosen_tasks() == [TASK]  # the task on screen is ticked
    view.dense_combo.setCurrentText(str(dense))
    view.settings.target.setValue(5.0)
    view.settings.steps.setValue(2)
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as done:
        view.job.start_button.click()
    assert done.args[0].status == "done", done.args[0]
    result = win.tools.compare_controller.result
    row = result["tasks"][0]
    models = {"sparse", "dense"} | ({"dense_matched"} if row.get("dense_matched_circuit") else set())
    assert set(view.curves) == {(m, TASK) for m in models}
    for (model, _), item in view.curves.items():
        xs, ys = item.getOriginalDataset()
        curve = [p for p in result["curves"] if p["model"] == model]
        assert sorted(xs.tolist()) == sorted(max(1, p["edges"]) for p in curve)
        assert np.allclose(sorted(ys), sorted(p["loss"] for p in curve))
    assert view.plot.getPlotItem().ctrl.logXCheck.isChecked()  # log x
    cells = [view.table.item(0, j).text() for j in range(view.table.columnCount())]
    assert cells[:4] == [TASK, str(row["sparse_edges"]), str(row["dense_edges"]), f"{row['ratio']:.2f}"]
    assert view.table.item(1, 0).text() == "geometric mean"
    assert f"{result['ratio']:.2f}" in view.summary.text() and "Matched loss" in view.summary.text()
    assert Path(result["csv"]).exists() and errors == []


def test_compare_with_another_tokenizer_is_a_clear_error(qtbot, open_window, runs, errors, tmp_path) -> None:
    from engine.data.tokenizer import BPETokenizer, save_tokenizer

    sparse, dense = runs
    save_tokenizer(BPETokenizer.train(["def f(x):\n    return x\n" * 50], vocab_size=300), dense / "tokenizer.json")
    win = open_window(sparse)
    win.tools.compare_view.dense_combo.setCurrentText(str(dense))
    with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as done:
        win.tools.compare_view.job.start_button.click()
    assert done.args[0].status == "failed"
    assert len(errors) == 1 and errors[0][0] == "compare failed"
    assert "different tokenizers" in errors[0][1] and "char, 97 ids" in errors[0][1] and "bpe, " in errors[0][1]
    job = win.tools.compare_view.job
    assert "failed" in job.status.text() and job.start_button.isEnabled()
    assert win.state.bundle is not None and win.isVisible()  # the app keeps running


def test_formation_slider_switches_checkpoint_circuits(qtbot, open_window, runs, errors) -> None:
    from engine import api

    sparse, _ = runs
    win = open_window(sparse)
    panel = win.tools.formation_panel
    assert "2 checkpoints" in panel.checkpoints_label.text() and not panel.slider.isEnabled()
    target = max(task_loss(sparse, 10), task_loss(sparse, 20)) + 0.005  # both form, with real circuits
    panel.settings.target.setValue(target)
    panel.settings.steps.setValue(2)
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):  # the last checkpoint's circuit opens
        with qtbot.waitSignal(win.jobs.finished, timeout=LOAD_TIMEOUT_MS) as done:
            panel.job.start_button.click()
        assert done.args[0].status == "done", done.args[0]
    rows = done.args[0].result["steps"]
    assert [r["step"] for r in rows] == [10, 20] and all(r["status"] == "circuit" for r in rows)
    assert panel.slider.isEnabled() and (panel.slider.minimum(), panel.slider.maximum()) == (0, 1)
    assert (panel.first_label.text(), panel.last_label.text()) == ("step 10", "step 20")
    shown, places = {}, {}
    for index in (1, 0, 1):  # scrub back and forth
        if index != panel.slider.value():
            with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
                panel.slider.setValue(index)
        b = win.state.bundle
        step = rows[index]["step"]
        assert b.spec.checkpoint == step and b.circuit_path == Path(rows[index]["circuit"])
        assert b.model_hash == api.load_run(sparse, checkpoint=step).model_hash  # that checkpoint's weights
        assert b.circuit.settings["checkpoint"] == step
        assert win.state.view == "circuit" and set(win.state.graph.ids) == {str(n) for n in b.circuit.nodes}
        assert f"step {step}" in panel.step_label.text()
        shown[step] = (b.circuit.nodes, b.model_graph.weight.copy())
        g = win.state.graph
        places[step] = {node: tuple(g.pos[i]) for i, node in enumerate(g.ids)}
    # Two checkpoints of a tiny run may well prune to the same nodes; what must differ is the circuit
    # file each shows and the weights under it.
    assert rows[0]["circuit"] != rows[1]["circuit"]
    assert not np.array_equal(shown[10][1], shown[20][1])  # and so do the model's weights under it
    common = places[10].keys() & places[20].keys()
    assert common and all(places[10][n] == places[20][n] for n in common)  # nodes keep their place
    with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
        panel.final_button.click()
    assert win.state.bundle.spec.checkpoint is None and win.state.bundle.model_hash == api.load_run(sparse).model_hash
    assert errors == []


def test_formation_without_checkpoints_says_so(qtbot, open_window, fresh_tiny_run: Path, errors) -> None:
    win = open_window(fresh_tiny_run)  # the hand-made tiny run has final weights only
    button = win.tools.formation_panel.job.start_button
    assert not button.isEnabled()  # off for this run, and its tooltip says why
    assert "0 checkpoints" in button.toolTip() and "needs at least 2" in button.toolTip()
    win.tools.formation_controller.start()  # reached anyway (a shortcut): the engine's message in a dialog
    assert len(errors) == 1 and errors[0][0] == "Cannot run circuit formation"
    assert "0 checkpoints" in errors[0][1] and "needs at least 2" in errors[0][1]
    assert win.jobs.running is None and not button.isEnabled()


def test_every_pruning_panel_asks_for_a_run_first(qtbot, errors) -> None:
    from app.window.main_window import MainWindow

    win = MainWindow(persist_settings=False)
    qtbot.addWidget(win)
    assert win.state.bundle is None
    for controller in (win.tools.prune_controller, win.tools.compare_controller, win.tools.formation_controller):
        controller.start()
    assert [title for title, _ in errors] == ["No run loaded"] * 3
    assert all("Open" in text and "run" in text for _, text in errors)
    assert win.jobs.running is None
