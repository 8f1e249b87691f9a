"""Random draws from name pools: the draws that the generated idioms (:mod:`engine.data.idioms`) and
the built-in tasks (:mod:`engine.tasks.gen`) share.

:class:`PoolDraw` reads its pools from a mapping by kind (``"var"``, ``"pair"``, ``"func"``, ``"cls"``,
``"attr"`` ...): the idioms pass the whole pools of :mod:`engine.data.names`, a task passes one split's
halves. Each draw is one call on the ``random.Random`` it was given (``choice`` for one name, ``sample``
for several, ``random`` for a coin), so a subclass that adds draws keeps the sequence of calls, and
with it every generated string, fixed for a seed. Draws whose probabilities differ between idioms and
tasks (numbers, string contents, expressions) belong to the subclasses.

Knows nothing about what the pools hold, templates, tasks, tokenizers or models.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

__all__ = ["PoolDraw", "indent"]


class PoolDraw:
    """Random choices from one ``random.Random`` and one mapping of pools by kind."""

    __slots__ = ("rng", "pools", "choice", "random", "randint")

    def __init__(self, rng: random.Random, pools: Mapping[str, tuple[Any, ...]]) -> None:
        self.rng = rng
        self.pools = pools
        self.choice = rng.choice
        self.random = rng.random
        self.randint = rng.randint

    def pick(self, pool: str) -> Any:
        """One entry of the pool named ``pool``."""
        return self.choice(self.pools[pool])

    def sample(self, pool: str, k: int) -> list[Any]:
        """``k`` entries at different positions of the pool named ``pool``."""
        return self.rng.sample(self.pools[pool], k)

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.random() < p

    # -- identifiers ----------------------------------------------------------------------------
    def var(self) -> str:
        return self.pick("var")

    def vars(self, k: int) -> list[str]:
        return self.sample("var", k)

    def pair(self) -> tuple[str, str]:
        """A (collection, element) name pair such as ``("items", "item")``."""
        return self.pick("pair")

    def func(self) -> str:
        return self.pick("func")

    def cls(self) -> str:
        return self.pick("cls")

    def attrs(self, k: int) -> list[str]:
        return self.sample("attr", k)

    # -- literals -------------------------------------------------------------------------------
    def quote(self) -> str:
        """The quote character of a string literal: double a little more often than single."""
        return '"' if self.random() < 0.55 else "'"


def indent(lines: list[str], levels: int = 1) -> list[str]:
    """``lines`` indented by four spaces per level (empty lines stay empty)."""
    pad = "    " * levels
    return [pad + line if line else line for line in lines]
