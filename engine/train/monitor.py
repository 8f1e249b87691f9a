"""Held-out task losses reported while a model trains (SPEC §5), to watch behaviours form.

Cheap on purpose: a few built-in tasks with 32 held-out pairs each, evaluated only where the
training loop already evaluates the validation loss (every ``train.eval_interval`` steps). A task
that does not fit the run's tokenizer (a target that is not one BPE token) is left out with a note
instead of stopping the training. Evaluation runs without grad and
leaves the model's train/eval mode as it was, so monitoring never changes what is trained.
Knows nothing about the training loop, Qt or printing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.errors import UserError
from engine.tasks.lookup import EncodedTask, encode_task, get_task, last_logits, task_metrics

DEFAULT_MONITOR_TASKS = ("single_double_quote", "bracket_counting", "else_elif")
"""Tasks the app monitors by default: the ones the CPU demo recipe learns first (README)."""
DEFAULT_MONITOR_PAIRS = 32


@dataclass(frozen=True)
class MonitorTask:
    """A task's held-out pairs, encoded once for the run's tokenizer and context."""

    name: str
    enc: EncodedTask


def prepare_monitor(tokenizer, names: tuple[str, ...], n_ctx: int, n_pairs: int = DEFAULT_MONITOR_PAIRS,
                    seed: int = 0) -> tuple[list[MonitorTask], list[str]]:
    """Encode each named built-in task's held-out (``val``) pairs -> (tasks, notes about tasks left out).

    An unknown task name is the caller's error (UserError); a task that cannot be encoded for this
    tokenizer is skipped with a note.
    """
    tasks, notes = [], []
    for name in names:
        task = get_task(name)
        try:
            enc = encode_task(tokenizer, task.pairs("val", n_pairs, seed), n_ctx, task_name=name)
        except UserError as exc:
            notes.append(f"task {name} is not monitored: {exc}")
            continue
        tasks.append(MonitorTask(name, enc))
    return tasks, notes


@torch.no_grad()
def task_loss(model: torch.nn.Module, task: MonitorTask, device: str | torch.device = "cpu") -> float:
    """Held-out task loss (mean -log p(correct) over the two targets) of ``model`` on ``task``."""
    return task_metrics(last_logits(model, task.enc, device=device), task.enc).loss
