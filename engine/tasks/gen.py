"""Random draws for the built-in tasks: :class:`_Gen` composes one pair from one split's pools
(:mod:`engine.tasks.pools`), with the tasks' own draws (numbers, string contents, expressions,
conditions, statements, the unrelated code around an idiom) on top of the shared name draws of
:class:`~engine.data.draws.PoolDraw`, and fits the pair under :data:`MAX_PROMPT_CHARS`.

Knows nothing about particular tasks, the task registry, tokenizers or models.
"""

from __future__ import annotations

import random
from typing import Callable, Optional

from engine.data.draws import PoolDraw, indent
from engine.tasks.pools import SPLIT_POOLS
from engine.tasks.types import MAX_PROMPT_CHARS, TaskPair


class _Gen(PoolDraw):
    """Random choices for one pair, from one ``random.Random`` and one split's pools."""

    __slots__ = ()

    def __init__(self, rng: random.Random, split: str) -> None:
        super().__init__(rng, SPLIT_POOLS[split])

    # -- draws ------------------------------------------------------------------------------
    def num(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return str(self.rng.randint(0, 10))
        if r < 0.85:
            return str(self.rng.randint(11, 100))
        return self.rng.choice(("255", "1000", "1024", "-1", "0.5", "1.0", "3.14", "2.5"))

    def nums(self, lo: int = 1, hi: int = 4) -> str:
        return ", ".join(self.num() if self.chance(0.85) else self.var()
                         for _ in range(self.rng.randint(lo, hi)))

    def text(self) -> str:
        """Contents of a string literal: never a quote or backslash."""
        r = self.rng.random()
        if r < 0.4:
            return self.pick("word")
        if r < 0.62:
            return " ".join(self.sample("word", self.rng.randint(2, 3)))
        if r < 0.85:
            return self.pick("sentence") + self.rng.choice(("", "", "", ".", "!", ":"))
        return self.pick("symbolic")

    def string(self) -> str:
        q = self.quote()
        return q + self.pick("word") + q

    def atom(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.num()
        if r < 0.7:
            return self.var()
        if r < 0.88:
            return self.string()
        return self.rng.choice(("None", "True", "False", "[]", "0"))

    def expr(self, v: str) -> str:
        k = self.rng.randint(0, 7)
        if k == 0:
            return f"{v} + {self.num()}"
        if k == 1:
            return f"len({v})"
        if k == 2:
            return f"{self.func()}({v})"
        if k == 3:
            return f"{v}.{self.pick('attr')}"
        if k == 4:
            return f"{v}[{self.rng.randint(0, 3)}]"
        if k == 5:
            return f"{self.rng.choice(('str', 'int', 'abs', 'sorted', 'max'))}({v})"
        if k == 6:
            return f"{v} * {self.num()}"
        return v

    def cond(self, v: str) -> str:
        """A condition about ``v``; never ends with a space."""
        k = self.rng.randint(0, 11)
        if k == 0:
            return f"{v} > {self.num()}"
        if k == 1:
            return f"{v} is None"
        if k == 2:
            return f"not {v}"
        if k == 3:
            return f"{v} in {self.pair()[0]}"
        if k == 4:
            return f"len({v}) > {self.rng.randint(0, 10)}"
        if k == 5:
            return f"{v} % 2 == 0"
        if k == 6:
            return f"{v} == {self.atom()}"
        if k == 7:
            return f"{v} < {self.var()}"
        if k == 8:
            return f"{v} is not None"
        if k == 9:
            return f"isinstance({v}, {self.rng.choice(('int', 'str', 'list', 'dict'))})"
        if k == 10:
            return f"{self.func()}({v})"
        return v

    def stmt(self, v: str) -> str:
        k = self.rng.randint(0, 6)
        if k == 0:
            return f"{self.var()} = {self.expr(v)}"
        if k == 1:
            return f"print({v})"
        if k == 2:
            return f"{self.pair()[0]}.append({v})"
        if k == 3:
            return "count += 1"
        if k == 4:
            return f"{self.func()}({v})"
        if k == 5:
            return f"total += {v}"
        return f"{v} = {self.expr(v)}"

    def distinct_first(self, pool: str, k: int = 2) -> list[str]:
        """``k`` names from ``pool`` with pairwise different first characters."""
        while True:
            names = self.sample(pool, k)
            if len({n[0] for n in names}) == k:
                return names

    # -- surroundings -------------------------------------------------------------------------
    def pre(self) -> list[str]:
        """0-2 lines of unrelated code before the idiom (shared by both prompts)."""
        if self.rng.random() < 0.4:
            return []
        k = self.rng.randint(0, 7)
        v = self.var()
        if k == 0:
            line = f"{v} = {self.num()}"
        elif k == 1:
            line = f"{self.pair()[0]} = []"
        elif k == 2:
            line = f"{v} = {self.func()}({self.var()})"
        elif k == 3:
            line = f"print({v})"
        elif k == 4:
            line = "# " + self.pick("comment")
        elif k == 5:
            line = f"import {self.pick('module')}"
        elif k == 6:
            line = f"{v} = {self.string()}"
        else:
            line = f"{self.func()}()"
        return [line, ""] if self.rng.random() < 0.15 else [line]

    def header(self) -> str:
        params = ", ".join(self.sample("var", self.rng.randint(0, 2)))
        return f"def {self.func()}({params}):"

    def make(self, a: list[str], ta: str, b: list[str], tb: str, *, pre: bool = True,
             wrap: float = 0.25) -> Optional[TaskPair]:
        """A pair from the idiom lines of each side (the last line is the unfinished one).

        Adds shared surroundings (an unrelated line before; with probability ``wrap`` an enclosing
        ``def``); drops them if a prompt would exceed :data:`MAX_PROMPT_CHARS`. None if still too
        long.
        """
        ctx = self.pre() if pre else []
        head = self.header() if self.rng.random() < wrap else None
        attempts = [(ctx, head), ([], head)]
        if wrap < 1.0:
            attempts.append(([], None))  # a forced wrapper (wrap=1.0) is never dropped
        for c, h in attempts:
            la, lb = c + a, c + b
            if h is not None:
                la, lb = [h] + indent(la), [h] + indent(lb)
            pa, pb = "\n".join(la), "\n".join(lb)
            if len(pa) <= MAX_PROMPT_CHARS and len(pb) <= MAX_PROMPT_CHARS:
                return TaskPair(pa, ta, pb, tb)
        return None


#: One template variant: draws a pair (or None when it came out too long).
_Variant = Callable[[_Gen], Optional[TaskPair]]
