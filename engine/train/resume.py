"""Resuming a run without ever losing it: which checkpoint to continue from, what a killed training
left behind, and trimming the training log only once the resumed run has written new state.

:func:`resume_point` picks the newest checkpoint that is *valid* (its JSON readable and agreeing
with its name, its weights and optimizer moments readable, with the config's names, shapes and
dtypes, and finite). It refuses, with one error that says what it found and how to go on, rather
than resume below the step ``model.safetensors`` holds or restart a trained run from step 0; skipping
damaged newer checkpoints is a warning. Nothing in the run is changed before that decision, and the
log is trimmed (:func:`trim_log`) only when the resumed run writes its first checkpoint.
Knows nothing about the training loop or Qt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.checkpoint import (CHECKSUM_FILE, CKPT_DIR, MODEL_FILE, CheckpointInfo, check_opt_tensors, check_weights,
                               checkpoint_problem, load_tensors, model_file_step, step_of_name)
from engine.config import MAX_STEPS, RunConfig
from engine.errors import UserError
from engine.fileio import atomic_write_text, jsonl_objects, remove_stale_temps
from engine.model import GPT
from engine.runs import CONFIG_FILE, LOG_FILE, STATUS_FILE, TOKENIZER_FILE, read_status

log = logging.getLogger(__name__)

#: Files a training writes atomically in the run folder and in its checkpoints folder.
RUN_FILES = (MODEL_FILE, CHECKSUM_FILE, CONFIG_FILE, TOKENIZER_FILE, LOG_FILE, STATUS_FILE)
CKPT_FILES = ("step_*.safetensors", "step_*.json")


def clean_stale_temps(run_dir: Path) -> list[Path]:
    """Delete the temporary files that a killed training left (``checkpoints/.step_*.tmp`` and the
    like); only a training writes these names, so any there when one starts are stale."""
    run_dir = Path(run_dir)
    removed = remove_stale_temps(run_dir, RUN_FILES) if run_dir.is_dir() else []
    if (run_dir / CKPT_DIR).is_dir():
        removed += remove_stale_temps(run_dir / CKPT_DIR, CKPT_FILES)
    for p in removed:
        log.info("removed %s, left by a training that was killed", p)
    return removed


@dataclass(frozen=True)
class ResumePoint:
    """Where a resume starts: the checkpoint (None: step 0, nothing trained to lose) and warnings."""

    checkpoint: CheckpointInfo | None
    notes: tuple[str, ...] = ()


def model_step(run_dir: Path) -> int | None:
    """The training step ``model.safetensors`` holds (its metadata, else run.json's ``steps_done``);
    -1 when that cannot be told, None when the run has no model file."""
    path = Path(run_dir) / MODEL_FILE
    if not path.exists():
        return None
    step = model_file_step(path)
    if step is None:
        try:
            done = read_status(run_dir).get("steps_done")
        except UserError:
            done = None
        step = done if isinstance(done, int) and not isinstance(done, bool) and 0 <= done <= MAX_STEPS else -1
    return step


def _validate(ck: CheckpointInfo, meta_model: torch.nn.Module) -> str:
    """'' when the checkpoint's tensors can be restored into the model and its optimizer, else why not."""
    try:
        tensors = load_tensors(ck.weights)
        check_weights(meta_model, tensors, ck.weights)
        check_opt_tensors(meta_model, tensors, ck.weights)
    except UserError as exc:
        return str(exc).replace(f"{ck.weights}", ck.weights.name)
    return ""


def _candidates(ckdir: Path) -> list[Path]:
    """The checkpoints' JSON paths (present or not) by step, newest first."""
    stems = {p.with_suffix(".json") for p in ckdir.glob("step_*") if step_of_name(p) is not None}
    return sorted(stems, key=lambda p: step_of_name(p) or 0, reverse=True)


def resume_point(run_dir: Path, cfg: RunConfig) -> ResumePoint:
    """The newest valid checkpoint of ``run_dir`` to resume from, else a UserError when resuming
    would lose training (see the module docstring). Reads only."""
    run_dir = Path(run_dir)
    ckdir = run_dir / CKPT_DIR
    if ckdir.exists() and not ckdir.is_dir():
        raise UserError(f"cannot resume {run_dir}: {ckdir} is a file, not the folder of checkpoints; move it "
                        f"out of the run (or train into a new --out folder to start over)")
    for name in (MODEL_FILE, LOG_FILE, STATUS_FILE):
        if (run_dir / name).is_dir():
            raise UserError(f"cannot resume {run_dir}: {run_dir / name} is a folder, not the run's {name}; move "
                            f"it out of the run")
    with torch.device("meta"):
        meta_model = GPT(cfg.model)
    problems: list[str] = []
    chosen = None
    for js in (_candidates(ckdir) if ckdir.is_dir() else []):
        ck, why = checkpoint_problem(js) if js.exists() else (None, "its JSON is missing (an unfinished write)")
        why = why or _validate(ck, meta_model)
        if not why:
            chosen = ck
            break
        problems.append(f"{js.stem} ({why})")
    held = model_step(run_dir)
    start = chosen.step if chosen is not None else 0
    if (chosen is None and (problems or held is not None)) or (chosen is not None and held is not None
                                                                and start < held):
        raise UserError(_refusal(run_dir, chosen, problems, held))
    notes = ()
    if problems:
        notes = (f"warning: skipped damaged checkpoint(s) {'; '.join(problems)}; resuming from step {start}, "
                 f"the newest valid one",)
    return ResumePoint(chosen, notes)


def _refusal(run_dir: Path, chosen: CheckpointInfo | None, problems: list[str], held: int | None) -> str:
    found = (f"no readable checkpoint: {'; '.join(problems)}" if problems and chosen is None else
             f"damaged checkpoint(s) {'; '.join(problems)}" if problems else
             f"no checkpoints in {run_dir / CKPT_DIR}")
    start = chosen.step if chosen is not None else 0
    lose = (f"{MODEL_FILE}, which holds {held} trained steps" if held is not None and held > 0 else
            f"the trained {MODEL_FILE}" if held is not None else "the damaged checkpoints")
    go_on = (f"To continue from step {start} anyway, move {MODEL_FILE} and the damaged checkpoint files out of "
             f"the run first; to start over" if chosen is not None else "To start over")
    return (f"cannot resume {run_dir}: found {found}; resuming from step {start} would overwrite {lose}. "
            f"{go_on}, train into a new --out folder (or delete {run_dir} yourself)")


def trim_log(run_dir: Path, start: int, mark: int) -> None:
    """Rewrite the training log once the run resumed at ``start`` has written a checkpoint: the lines
    before byte ``mark`` (the log as it was when the run resumed) up to step ``start`` (before it when
    ``start`` is 0), then every line written since. A damaged line, or one whose step is not a number,
    is dropped."""
    path = Path(run_dir) / LOG_FILE
    try:
        data = path.read_bytes()
    except OSError:
        return
    old = [line for line, e in jsonl_objects(data[:mark])  # a run resumed at 0 logs step 0 again
           if _step(e) is not None and (_step(e) < start or _step(e) == start > 0)]
    new = [line for line, _ in jsonl_objects(data[mark:])]
    atomic_write_text(path, "".join(line + "\n" for line in old + new))


def _step(entry: dict) -> int | None:
    step = entry.get("step", 0)
    return step if isinstance(step, (int, float)) and not isinstance(step, bool) else None
