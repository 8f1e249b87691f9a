"""Resume never destroys a trained run (issue 19): with no usable checkpoint, or only ones below what
model.safetensors holds, ``train --resume`` refuses with one error and changes nothing; damaged newer
checkpoints are skipped with a warning when that loses nothing; stale temporary files of a killed
training are removed; the log is trimmed only once the resumed run has written a checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import CKPT_DIR, MODEL_FILE
from engine.cli.main import main
from engine.runs import LOG_FILE, read_log


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_factory, tiny_config) -> Path:
    from engine.train.loop import run_to_end, train

    root = tmp_path_factory.mktemp("resume")
    cfg = tiny_config(corpus_factory(root / "corpus"), steps=4, checkpoint_interval=2, eval_interval=2,
                      eval_batches=1)
    run_to_end(train(root / "run", cfg))
    return root / "run"


@pytest.fixture
def run(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.blake2b(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def ck(run: Path, step: int, ext: str) -> Path:
    return run / CKPT_DIR / f"step_{step:07d}.{ext}"


def _wrong_moments(run: Path) -> None:
    path = ck(run, 4, "safetensors")
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.startswith("opt.") and k.endswith(".exp_avg"))
    tensors[key] = torch.zeros(3, 3)
    save_file(tensors, str(path), metadata={"step": "4"})


REFUSALS = {
    "checkpoints deleted": (lambda r: shutil.rmtree(r / CKPT_DIR), "no checkpoints"),
    "every checkpoint JSON damaged": (lambda r: [ck(r, s, "json").write_bytes(b"\xff{") for s in (2, 4)],
                                      "no readable checkpoint"),
    "the latest JSON damaged": (lambda r: ck(r, 4, "json").write_text("{"), "step_0000004"),
    "step 2**70": (lambda r: ck(r, 4, "json").write_text(json.dumps({"step": 2 ** 70, "weights": "x"})), "2 ** 70"),
    "checkpoints is a file": (lambda r: (shutil.rmtree(r / CKPT_DIR), (r / CKPT_DIR).write_text("x")), "is a file"),
    "optimizer moments of the wrong shape": (_wrong_moments, "shape"),
    "weights of the wrong dtype": (lambda r: save_file({k: v.double() for k, v in load_file(str(ck(r, 4, "safetensors"))).items()},
                                                       str(ck(r, 4, "safetensors"))), "float64"),
}


@pytest.mark.parametrize("damage", sorted(REFUSALS))
def test_resume_refuses_rather_than_lose_training(run, capsys, damage):
    make, match = REFUSALS[damage]
    make(run)
    before = snapshot(run)
    assert main(["train", "--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "cannot resume" in lines[0] and "new --out folder" in lines[0]
    if match != "2 ** 70":
        assert match in lines[0], lines[0]
    assert snapshot(run) == before  # nothing trimmed, overwritten or cleaned


def test_a_damaged_newer_checkpoint_is_skipped_with_a_warning_when_nothing_is_lost(run, trained):
    from engine.train.loop import run_to_end, train

    ck(run, 4, "json").write_text("{")
    (run / MODEL_FILE).unlink()  # nothing past step 2 is kept anywhere else
    events = []
    result = run_to_end(train(run, resume=True), events.append)
    assert any("skipped damaged checkpoint" in e.message and "step_0000004" in e.message for e in events)
    assert result.steps_done == 4
    a, b = load_file(str(trained / MODEL_FILE)), load_file(str(run / MODEL_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same model as before
    _assert_same_log(run, trained)


def test_stale_temporaries_are_removed_and_a_run_continues_to_more_steps(run, capsys):
    stale = [run / CKPT_DIR / ".step_0000006.safetensors.abc123.tmp", run / f".{MODEL_FILE}.def456.tmp",
             run / f".{LOG_FILE}.x.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    keep = run / CKPT_DIR / "notes.txt"
    keep.write_text("mine")
    old = os.umask(0o022)
    try:
        assert main(["train", "--resume", "--steps", "6", "--out", str(run)]) == 0, capsys.readouterr().err
    finally:
        os.umask(old)
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"
    assert json.loads((run / "run.json").read_text())["steps_done"] == 6
    evals = [e["step"] for e in read_log(run) if e["kind"] == "eval"]
    assert evals == sorted(set(evals)) and evals[-1] == 6
    for p in (run / MODEL_FILE, ck(run, 6, "safetensors"), ck(run, 6, "json")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p  # weights as readable as JSON


def test_a_folder_in_place_of_the_log_is_refused(run, capsys):
    (run / LOG_FILE).unlink()
    (run / LOG_FILE).mkdir()
    before = snapshot(run)
    assert main(["train", "--resume", "--steps", "6", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot resume") and "is a folder" in err and "Traceback" not in err
    assert snapshot(run) == before


def test_a_run_killed_before_its_first_checkpoint_restarts_cleanly(trained, tmp_path):
    """Nothing trained is kept anywhere, so the resume starts at step 0; the log keeps no step twice."""
    from engine.train.loop import run_to_end, train

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    shutil.rmtree(run / CKPT_DIR)
    (run / MODEL_FILE).unlink()
    run_to_end(train(run, resume=True))
    _assert_same_log(run, trained)


def _assert_same_log(run: Path, reference: Path) -> None:
    """The same evaluations as the reference run and no step logged twice (step events are throttled
    by the clock, so only evaluations are compared one to one)."""
    entries = [(e["kind"], e["step"]) for e in read_log(run)]
    assert len(entries) == len(set(entries)), entries
    assert [s for k, s in entries if k == "eval"] == [e["step"] for e in read_log(reference) if e["kind"] == "eval"]
