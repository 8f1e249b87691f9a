"""What training offers the app: task losses in the event stream, heartbeats that let a caller cancel
inside long phases, continuing a finished run to more steps, and the output-folder checks."""

from __future__ import annotations

import json

import pytest
import torch

from engine.train import loop as train_mod
from engine.train import monitor as train_monitor
from engine.api import check_output_dir, train_status
from engine.checkpoint import list_checkpoints, load_tensors
from engine.errors import UserError
from engine.runs import read_log
from engine.data.tokenizer import CharTokenizer
from engine.train.loop import run_to_end, train
from engine.train.monitor import prepare_monitor

TASKS = ("single_double_quote", "else_elif")


def _weights(run_dir):
    return load_tensors(run_dir / "model.safetensors")


def test_task_losses_are_reported_without_changing_the_training(tmp_path, corpus_dir, tiny_config):
    cfg = tiny_config(corpus_dir, steps=12, eval_interval=4, checkpoint_interval=4)
    plain = tmp_path / "plain"
    run_to_end(train(plain, cfg))

    watched = tmp_path / "watched"
    events = []
    gen = train(watched, cfg, task_eval=TASKS, task_pairs=8)
    for ev in gen:
        events.append(ev)
        if ev.kind in ("step", "eval") and ev.step >= 5:
            break
    gen.close()  # cancelled mid-run ...
    assert 5 <= list_checkpoints(watched)[-1].step < 12
    run_to_end(train(watched, resume=True, task_eval=TASKS, task_pairs=8), events.append)  # ... and resumed

    evals = [e for e in events if e.kind == "eval"]
    assert [e.step for e in evals] == [0, 4, 8, 12]
    for e in evals:
        assert [name for name, _ in e.task_losses] == list(TASKS)
        assert all(0.0 < loss < 20.0 for _, loss in e.task_losses)
    assert all(not e.task_losses for e in events if e.kind != "eval")
    logged = [r for r in read_log(watched) if r["kind"] == "eval"]
    assert logged[-1]["step"] == 12 and set(logged[-1]["task_losses"]) == set(TASKS)
    a, b = _weights(plain), _weights(watched)  # monitoring + cancel + resume == one plain run
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=0), k


def test_busy_heartbeats_let_a_caller_cancel_inside_an_evaluation(tmp_path, corpus_dir, tiny_config, monkeypatch):
    monkeypatch.setattr(train_mod, "EVENT_INTERVAL_S", 0.0)  # a heartbeat after every part
    cfg = tiny_config(corpus_dir, steps=12, eval_interval=6, checkpoint_interval=100)
    run = tmp_path / "run"
    kinds = []
    gen = train(run, cfg, task_eval=TASKS, task_pairs=8)
    for ev in gen:
        kinds.append((ev.kind, ev.step))
        if ev.kind == "busy" and ev.step == 6:
            break  # inside the evaluation at step 6: validation batches, then the two tasks
    gen.close()
    first_step = next(i for i, (k, _) in enumerate(kinds) if k == "step")
    assert ("busy", 0) in kinds[:first_step]  # the corpus phases and the first evaluation yield too
    assert ("eval", 6) not in kinds
    cks = list_checkpoints(run)
    assert [c.step for c in cks] == [6]  # the cancel checkpoint: the last completed step
    assert not list(run.rglob("*.tmp")), "a temporary file of an atomic write was left behind"
    status = train_status(run)
    assert (status.steps_done, status.total_steps, status.has_model, status.complete) == (6, 12, True, False)
    result = run_to_end(train(run, resume=True))
    assert result.steps_done == 12 and not result.cancelled


def test_a_finished_run_continues_to_more_steps(tmp_path, corpus_dir, tiny_config):
    cfg = tiny_config(corpus_dir, steps=6, eval_interval=3, checkpoint_interval=3)
    run = tmp_path / "run"
    run_to_end(train(run, cfg))
    assert train_status(run).complete
    with pytest.raises(UserError, match="last checkpoint is at step 6"):
        next(train(run, resume=True, steps=6))
    events = []
    result = run_to_end(train(run, resume=True, steps=9), events.append)
    assert result.steps_done == 9 and result.total_steps == 9
    assert min(e.step for e in events if e.kind == "step") == 7  # it went on from step 6
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 9
    assert [c.step for c in list_checkpoints(run)] == [3, 6, 9]


def test_output_folder_checks(tmp_path, corpus_dir, tiny_config):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        check_output_dir(tmp_path / "full")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_output_dir(blocker / "run")
    with pytest.raises(UserError, match="cannot resume"):
        check_output_dir(tmp_path / "nothing", resume=True)
    assert not check_output_dir(tmp_path / "new" / "run").has_run  # missing parents are fine
    import engine.train.setup as setup

    def denied(*_a, **_k):  # what a read-only folder does (the tests may run as root, where chmod won't)
        raise PermissionError(13, "Permission denied")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(setup.tempfile, "TemporaryFile", denied)
        with pytest.raises(UserError, match=r"cannot write to .* \(Permission denied\); choose an output folder"):
            check_output_dir(tmp_path / "new_run")
    # train() checks before it reads any corpus, and leaves nothing behind
    with pytest.raises(UserError, match="is a file, not a folder"):
        next(train(blocker / "run", tiny_config(corpus_dir)))


def test_tasks_that_do_not_fit_are_left_out_with_a_note(monkeypatch):
    tasks, notes = prepare_monitor(CharTokenizer(), TASKS, n_ctx=64, n_pairs=4)
    assert [t.name for t in tasks] == list(TASKS) and not notes
    real = train_monitor.encode_task

    def encode(tok, pairs, n_ctx, task_name="task"):  # as a BPE tokenizer splitting a target would
        if task_name == TASKS[0]:
            raise UserError(f"task {task_name!r}: the target is not a single bpe token")
        return real(tok, pairs, n_ctx, task_name=task_name)

    monkeypatch.setattr(train_monitor, "encode_task", encode)
    tasks, notes = prepare_monitor(CharTokenizer(), TASKS, n_ctx=64, n_pairs=4)
    assert [t.name for t in tasks] == [TASKS[1]]
    assert len(notes) == 1 and notes[0].startswith(f"task {TASKS[0]} is not monitored") and "single bpe" in notes[0]
    with pytest.raises(UserError, match="unknown task"):
        prepare_monitor(CharTokenizer(), ("no_such_task",), n_ctx=64)
