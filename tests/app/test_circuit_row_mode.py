"""The Metrics panel's circuit row follows the ablation mode (issue 15, item 4): in zero and resample
mode everything outside the circuit is ablated that way too, computed in the ablation worker, and the
row's label names the ablation used. Offscreen pytest-qt; every wait is on a signal or a condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

LOAD_TIMEOUT_MS = 120_000


def circuit_row(win) -> tuple[str, str, str]:
    t = win.metrics.table
    return t.verticalHeaderItem(1).text(), t.item(1, 0).text(), t.item(1, 2).text()


def test_resample_mode_ablates_the_rest_of_the_model_with_resample_too(qtbot, open_window, tiny_run_with_store: Path,
                                                                      errors) -> None:
    from app.window.export import window_snapshot
    from engine.ablation.setup import run_ablator
    from engine.runs import load_run

    win = open_window(tiny_run_with_store)
    s = win.state
    qtbot.waitUntil(lambda: s.evaluation is not None, timeout=LOAD_TIMEOUT_MS)
    b = s.bundle
    assert b.resample and b.circuit is not None and s.mode == "mean" and s.baseline == "circuit"
    mean_alone = b.circuit_result
    assert circuit_row(win) == ("circuit alone (mean)", f"{mean_alone.loss:.4f}", f"{mean_alone.accuracy:.1%}")

    with qtbot.waitSignal(s.evaluationChanged, timeout=LOAD_TIMEOUT_MS):
        win.toolbar.mode_combo.setCurrentText("resample")
    qtbot.waitUntil(lambda: s.evaluation.request.mode == "resample", timeout=LOAD_TIMEOUT_MS)
    ablator, _ = run_ablator(load_run(b.run_path), b.task, b.circuit, n_pairs=b.spec.n_pairs)
    expected = ablator.evaluate((), (), "resample", "circuit", circuit_mode="resample")
    got = s.evaluation.circuit_result
    assert got.circuit_mode == "resample"
    assert got.loss == pytest.approx(expected.loss, abs=1e-6)
    np.testing.assert_allclose(got.logit_diff, expected.logit_diff, atol=1e-5)
    assert not np.allclose(got.logit_diff, mean_alone.logit_diff)  # not the mean numbers
    assert circuit_row(win) == ("circuit alone (resample)", f"{expected.loss:.4f}", f"{expected.accuracy:.1%}")
    # Nothing ablated on top of the circuit: "now" is the circuit alone, with no delta against it.
    assert s.evaluation.result.loss == pytest.approx(expected.loss, abs=1e-6)
    assert win.metrics.table.item(2, 1).text() in ("+0.0000", "-0.0000")
    assert "circuit alone (resample)" in win.metrics.info.text()
    # The window's export states the ablation it used for the circuit row.
    snap = window_snapshot(win)
    assert snap.metrics["circuit"] == {"loss": pytest.approx(expected.loss, abs=1e-6),
                                       "accuracy": pytest.approx(expected.accuracy), "ablation": "resample"}
    assert f"circuit alone (resample) {expected.loss:.4f}" in snap.metrics_line()

    with qtbot.waitSignal(s.evaluationChanged, timeout=LOAD_TIMEOUT_MS):
        win.toolbar.mode_combo.setCurrentText("mean")  # back: the circuit's own mode, as before
    qtbot.waitUntil(lambda: s.evaluation.request.mode == "mean", timeout=LOAD_TIMEOUT_MS)
    assert circuit_row(win) == ("circuit alone (mean)", f"{mean_alone.loss:.4f}", f"{mean_alone.accuracy:.1%}")
    assert window_snapshot(win).metrics["circuit"]["ablation"] == "mean"
    assert errors == []
