"""Task data types and the constants they share (see :mod:`engine.tasks.lookup`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from engine.errors import UserError

#: The two splits: pairs for training masks / evaluation, and held-out pairs.
SPLITS = ("train", "val")
#: Longest built-in prompt, in characters.
MAX_PROMPT_CHARS = 100
#: Cap on the number of pairs a template task file expands to.
MAX_TEMPLATE_PAIRS = 5000
#: Fewest pairs a task file may have.
MIN_FILE_PAIRS = 8
#: Most pairs drawn from a task at once (held-out evaluation rarely needs more than a few hundred).
MAX_TASK_PAIRS = 20_000


@dataclass(frozen=True)
class TaskPair:
    """Prompt A continues with ``target_a``; its twin prompt B with ``target_b``."""

    prompt_a: str
    target_a: str
    prompt_b: str
    target_b: str


@dataclass(frozen=True)
class Task:
    """A named binary contrast; :meth:`pairs` draws its datapoints."""

    name: str
    description: str
    source: str  # "builtin" or the task file's path
    make_pairs: Callable[[str, int, int], list[TaskPair]] = field(repr=False, compare=False)

    def pairs(self, split: str, n: int, seed: int = 0) -> list[TaskPair]:
        """``n`` distinct pairs of ``split`` ("train" or "val"), deterministic for ``seed``.

        Built-in tasks always return exactly ``n`` pairs; file tasks return at most the number of
        pairs their split has.
        """
        if split not in SPLITS:
            raise UserError(f"unknown task split {split!r}; valid splits: {', '.join(SPLITS)}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise UserError(f"the number of task pairs must be a whole number >= 0, got {n!r}")
        if n > MAX_TASK_PAIRS:
            raise UserError(f"{n:,} task pairs asked for; at most {MAX_TASK_PAIRS:,} are drawn at once "
                            f"(a few hundred held-out pairs measure a task well)")
        if n == 0:
            return []
        return list(self.make_pairs(split, int(n), int(seed)))

    def example(self) -> TaskPair:
        """One held-out pair, for display."""
        return self.pairs("val", 1, seed=0)[0]


@dataclass(frozen=True, eq=False)
class EncodedTask:
    """Pairs as token arrays. Row ``2i`` is pair ``i`` side A, row ``2i+1`` side B."""

    tokens: np.ndarray  # (N, T) int64, right-padded with 0
    lengths: np.ndarray  # (N,) int64, prompt length in tokens (>= 1)
    target: np.ndarray  # (N,) int64, the correct next token
    foil: np.ndarray  # (N,) int64, the other side's target
    pair_index: np.ndarray  # (N,) int64
    side: np.ndarray  # (N,) int64, 0 = A, 1 = B
    pairs: tuple[TaskPair, ...]  # as evaluated (after any BPE boundary adaptation)

    @property
    def n(self) -> int:
        return int(self.tokens.shape[0])


@dataclass(frozen=True, eq=False)
class TaskMetrics:
    """Task loss and accuracy over the sequences of an :class:`EncodedTask`."""

    loss: float  # mean over sequences of -log softmax({target, foil})[target]
    accuracy: float  # fraction of sequences with target logit > foil logit
    logit_diff: np.ndarray  # (N,) target - foil logit
    p_correct: np.ndarray  # (N,) softmax probability of the target over {target, foil}
    n: int  # number of sequences
