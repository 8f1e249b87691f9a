"""Binary next-token contrast tasks (SPEC §5): built-in tasks, user task files, encoding, metrics.

A task is a set of *pairs*. Prompt A should continue with token ``target_a``; its minimally
different twin, prompt B, should continue with ``target_b``. Names, values and surrounding code vary
across pairs and are shared within a pair. The task loss of one sequence is a log-softmax over just
the two logits {its target, the other side's target} ("the foil"): ``-log p(correct)``; the task loss
is the mean over *sequences* (both sides of every pair), never the sum over a pair.

Built-in tasks
--------------
Eighteen built-in tasks (:data:`BUILTIN_TASKS`) are adapted to the character-level tokenizer: every
target is one character, and both prompts of a pair end on the same character wherever the task
allows it (so the never-pruned bigram table cannot solve a task on its own; the one exception,
``else_elif``, is listed in :data:`DIFFERENT_LAST_CHAR`). Prompts are at most 100 characters of
printable ASCII plus newline with four-space indents, written like the generated pretraining idioms
(:mod:`engine.data.idioms`). Each task has several template *variants*; ``split="val"`` uses different
variants (every third one) and the other half of every identifier / value pool than
``split="train"``, so the held-out loss measures generalisation, not memorisation.

User task files are read by :mod:`engine.tasks.files` (format documented there and in the README).
The built-in templates live in :mod:`engine.tasks.literals`, :mod:`engine.tasks.control` and
:mod:`engine.tasks.defs`, their pools in :mod:`engine.tasks.pools` (built from :mod:`engine.data.names`), the registry in :mod:`engine.tasks.builtin`.

Encoding and BPE boundaries
---------------------------
:func:`encode_task` turns pairs into padded token arrays. Under a BPE tokenizer the target may merge
with the last characters of the prompt (prompt ``print(`` + target ``"`` is one BPE token ``("``).
The pair is then adapted: ``prompt + target`` is tokenized, and if the token that covers the
target's first character starts inside the prompt, the boundary moves back to that token's start:
the new prompt is the text before it and the new target is the whole token (``print`` -> ``("``).
This is allowed only when that token ends exactly at the end of the text and the two targets of the
pair still differ; otherwise a :class:`UserError` explains how the target tokenizes.
:attr:`EncodedTask.pairs` holds the pairs as evaluated (after any adaptation).

Headless: stdlib, numpy and torch only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import UserError
from engine.tasks.builtin import BUILTIN_TASKS
from engine.tasks.files import load_task_file
from engine.tasks.types import (
    MAX_PROMPT_CHARS, MAX_TEMPLATE_PAIRS, MIN_FILE_PAIRS, SPLITS, EncodedTask, Task, TaskMetrics, TaskPair,
)
from engine.data.tokenizer import AnyTokenizer, CharTokenizer, describe_tokens, single_token_id

__all__ = [
    "BUILTIN_TASKS",
    "DIFFERENT_LAST_CHAR",
    "EncodedTask",
    "MAX_PROMPT_CHARS",
    "MAX_TEMPLATE_PAIRS",
    "MIN_FILE_PAIRS",
    "SPLITS",
    "Task",
    "TaskMetrics",
    "TaskPair",
    "encode_task",
    "get_task",
    "last_logits",
    "list_tasks",
    "load_task_file",
    "resolve_task",
    "task_metrics",
]


#: Built-in tasks whose two prompts end on different characters (and why).
DIFFERENT_LAST_CHAR: dict[str, str] = {
    "else_elif": "the contrast is the keyword itself: `else` is followed by `:`, `elif` by a space",
}



# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def list_tasks() -> list[Task]:
    """The built-in tasks, in a fixed order."""
    return list(BUILTIN_TASKS.values())


def get_task(name: str) -> Task:
    """A built-in task by name (UserError listing the valid names when unknown)."""
    try:
        return BUILTIN_TASKS[name]
    except (KeyError, TypeError):
        valid = ", ".join(BUILTIN_TASKS)
        raise UserError(
            f"unknown task {name!r}; built-in tasks: {valid} (or give your own task as a JSON task file)"
        ) from None


def resolve_task(name: Optional[str], task_file: Optional[Path]) -> Task:
    """The task named ``name`` or the one in ``task_file``; exactly one must be given."""
    if name is not None and task_file is not None:
        raise UserError("give either a built-in task name or a task file, not both")
    if name is None and task_file is None:
        raise UserError(
            f"no task given: name a built-in task ({', '.join(BUILTIN_TASKS)}) or give a task file"
        )
    if task_file is not None:
        return load_task_file(Path(task_file))
    return get_task(name)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _encode_side(tok: AnyTokenizer, prompt: str, target: str, where: str) -> tuple[np.ndarray, int, str, str]:
    """Prompt ids, target id, and the (possibly adapted) prompt and target text."""

    def not_single(t: str) -> UserError:
        return UserError(
            f"{where}: the target {t!r} is not a single {tok.kind} token ({describe_tokens(tok, t)}); "
            "task targets must be exactly one token (a single character always is under the char "
            "tokenizer)"
        )

    if isinstance(tok, CharTokenizer):
        tid = single_token_id(tok, target)
        if tid is None:
            raise not_single(target)
        return np.asarray(tok.encode(prompt), dtype=np.int64), tid, prompt, target
    text = prompt + target
    ids = np.asarray(tok.encode(text), dtype=np.int64)
    k = len(ids) - 1  # the last token covers the end of the target
    prefix = tok.decode(ids[:k])
    if k < 0 or not text.startswith(prefix):
        raise not_single(target)
    start = len(prefix)
    if start > len(prompt):  # the target spans several tokens
        raise not_single(target)
    # start < len(prompt): the target merges with the end of the prompt; move the boundary back.
    new_prompt, new_target = text[:start], text[start:]
    if not new_prompt:
        raise UserError(
            f"{where}: the target {target!r} merges with the whole prompt into one {tok.kind} "
            f"token ({describe_tokens(tok, text)}); give the prompt more text before the target"
        )
    tid = int(ids[k])
    if single_token_id(tok, new_target) != tid:
        raise not_single(target)
    return ids[:k], tid, new_prompt, new_target


def encode_task(tok: AnyTokenizer, pairs: Sequence[TaskPair], n_ctx: int,
                task_name: str = "task") -> EncodedTask:
    """Token arrays for ``pairs`` under ``tok``; prompts keep their last ``n_ctx`` tokens.

    Each target must be one token. Under BPE a target that merges with the end of its prompt moves
    the boundary back (see the module docstring); the pair's two targets must still differ.
    """
    if n_ctx < 1:
        raise UserError(f"context length must be at least 1, got {n_ctx}")
    if not pairs:
        raise UserError(f"task {task_name!r}: no pairs to encode")
    rows: list[np.ndarray] = []
    targets: list[int] = []
    foils: list[int] = []
    used: list[TaskPair] = []
    for i, p in enumerate(pairs):
        where_a = f"task {task_name!r}, pair {i} (side A)"
        where_b = f"task {task_name!r}, pair {i} (side B)"
        ids_a, ta, pa, xa = _encode_side(tok, p.prompt_a, p.target_a, where_a)
        ids_b, tb, pb, xb = _encode_side(tok, p.prompt_b, p.target_b, where_b)
        if ta == tb:
            raise UserError(
                f"task {task_name!r}, pair {i}: both sides' targets are the same {tok.kind} token "
                f"({describe_tokens(tok, xa)} and {describe_tokens(tok, xb)}); the targets must be "
                "different tokens"
            )
        for ids, where in ((ids_a, where_a), (ids_b, where_b)):
            if len(ids) == 0:
                raise UserError(f"{where}: the prompt is empty after tokenization")
        rows += [ids_a[-n_ctx:], ids_b[-n_ctx:]]
        targets += [ta, tb]
        foils += [tb, ta]
        used.append(TaskPair(pa, xa, pb, xb))
    N = len(rows)
    T = max(len(r) for r in rows)
    tokens = np.zeros((N, T), dtype=np.int64)
    lengths = np.zeros(N, dtype=np.int64)
    for r, ids in enumerate(rows):
        tokens[r, : len(ids)] = ids
        lengths[r] = len(ids)
    return EncodedTask(
        tokens=tokens,
        lengths=lengths,
        target=np.asarray(targets, dtype=np.int64),
        foil=np.asarray(foils, dtype=np.int64),
        pair_index=np.repeat(np.arange(len(pairs), dtype=np.int64), 2),
        side=np.tile(np.array([0, 1], dtype=np.int64), len(pairs)),
        pairs=tuple(used),
    )


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def logit_diff(logits: torch.Tensor, target: torch.Tensor, foil: torch.Tensor) -> torch.Tensor:
    """Per-sequence logit(target) - logit(foil): (N,). Differentiable."""
    return (logits.gather(1, target.view(-1, 1)) - logits.gather(1, foil.view(-1, 1)))[:, 0]


def two_way_loss(logits: torch.Tensor, target: torch.Tensor, foil: torch.Tensor) -> torch.Tensor:
    """Per-sequence task loss -log softmax over {target, foil} of the correct one: (N,). Differentiable."""
    return F.softplus(-logit_diff(logits.float(), target, foil))


def task_metrics(logits_last: torch.Tensor, enc: EncodedTask) -> TaskMetrics:
    """Task loss (SPEC §5: mean over sequences of -log softmax over {target, foil}) and accuracy."""
    logits = torch.as_tensor(logits_last).detach().to("cpu", torch.float64)
    if logits.dim() != 2 or logits.shape[0] != enc.n:
        raise ValueError(f"expected logits of shape ({enc.n}, vocab), got {tuple(logits.shape)}")
    diff = logit_diff(logits, torch.as_tensor(enc.target), torch.as_tensor(enc.foil))
    return TaskMetrics(
        loss=float(F.softplus(-diff).mean()),
        accuracy=float((diff > 0).double().mean()),
        logit_diff=diff.numpy().astype(np.float64),
        p_correct=torch.sigmoid(diff).numpy().astype(np.float64),
        n=enc.n,
    )


@torch.no_grad()
def last_logits(model: torch.nn.Module, enc: EncodedTask, device: str | torch.device = "cpu",
                batch_size: int = 256) -> torch.Tensor:
    """Logits (N, V), float32 on the CPU, at each row's last prompt token (eval mode, no grad)."""
    n_ctx = getattr(getattr(model, "cfg", None), "n_ctx", None)
    if n_ctx is not None and enc.tokens.shape[1] > n_ctx:
        raise UserError(f"task prompts are {enc.tokens.shape[1]} tokens but the model's context is "
                        f"{n_ctx}; encode the task with n_ctx={n_ctx}")
    was_training = model.training
    model.eval()
    try:
        out = []
        for s in range(0, enc.n, batch_size):
            lengths = torch.as_tensor(enc.lengths[s : s + batch_size])
            width = int(lengths.max())
            idx = torch.as_tensor(enc.tokens[s : s + batch_size, :width]).to(device)
            logits = model(idx)  # (B, T, V)
            pos = (lengths - 1).to(logits.device)
            out.append(logits[torch.arange(len(pos), device=logits.device), pos].float().cpu())
        return torch.cat(out, 0)
    finally:
        model.train(was_training)
