"""Tasks applied to a run: their pairs encoded for the run's tokenizer and context, the full model's
held-out loss and accuracy per task, and checking a user's task file against a run before a job
starts. Knows nothing about pruning, ablation or Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import load_run_config
from engine.runs import CONFIG_FILE, LoadedRun, check_run_dir, load_run, load_run_tokenizer, run_tokenizer
from engine.tasks.files import load_task_file
from engine.tasks.lookup import encode_task, get_task, last_logits, list_tasks, resolve_task, task_metrics
from engine.tasks.types import MAX_TASK_PAIRS, EncodedTask, Task


def resolve_task_arg(task: str | None, task_file: str | Path | None) -> Task:
    """A built-in task by name, or a user's task file (the CLI's ``--task`` / ``--task-file``)."""
    return resolve_task(task, Path(task_file) if task_file else None)


def task_data(run: LoadedRun, task: Task, n_pairs: int, split: str = "val", seed: int = 0) -> EncodedTask:
    """Encoded pairs of a task for this run's tokenizer and context (a UserError without a tokenizer)."""
    return encode_task(run_tokenizer(run), task.pairs(split, n_pairs, seed), run.config.model.n_ctx)


def eval_tasks(run_dir: Path | str, task_names: list[str] | None = None, task_files: list[Path] | None = None,
               n_pairs: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """Held-out task loss and accuracy of the full model, per task."""
    run = load_run(run_dir)
    tasks = [get_task(n) for n in task_names] if task_names else ([] if task_files else list_tasks())
    tasks += [load_task_file(Path(f)) for f in task_files or []]
    out = []
    for task in tasks:
        enc = task_data(run, task, n_pairs, "val", seed)
        m = task_metrics(last_logits(run.model, enc), enc)
        out.append({"task": task.name, "loss": m.loss, "accuracy": m.accuracy, "n_sequences": m.n})
    return out


def check_task_file(run_dir: Path | str, task_file: Path | str) -> Task:
    """Load a task file and encode all its pairs with the run's tokenizer (no model load): the
    UserError a pruning job would meet (a malformed file, a target that is not one token), at once."""
    run_dir = check_run_dir(run_dir)
    task = load_task_file(Path(task_file))
    tok = load_run_tokenizer(run_dir)
    n_ctx = load_run_config(run_dir / CONFIG_FILE).model.n_ctx
    for split in ("train", "val"):
        encode_task(tok, task.pairs(split, MAX_TASK_PAIRS), n_ctx, task.name)
    return task
