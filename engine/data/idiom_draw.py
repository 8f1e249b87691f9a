"""The random context an idiom template draws from: :class:`_Draw`, the idioms' own draws (string
contents, numbers, expressions, conditions, statements, f-strings, comments, docstrings) on top of the
shared name draws of :class:`~engine.data.draws.PoolDraw`, reading the pools of
:mod:`engine.data.names` whole.

Knows nothing about the templates, the registry, tasks, tokenizers or models.
"""

from __future__ import annotations

import random

from engine.data.draws import PoolDraw
from engine.data.names import (
    ATTRS, CLASSES, COMMENTS, CONTRACTIONS_DQ, FUNCS, PAIRS, QUOTED_SQ, SENTENCES, SYMBOLIC, VARS, WORDS,
)

#: The pools the shared draws read, by kind.
_POOLS = {"var": VARS, "pair": PAIRS, "func": FUNCS, "cls": CLASSES, "attr": ATTRS}


class _Draw(PoolDraw):
    """Random choices for one snippet, all from one ``random.Random``."""

    __slots__ = ()

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng, _POOLS)

    # -- literals -------------------------------------------------------------------------
    def text(self, q: str) -> str:
        """Contents for a string literal quoted with ``q`` (never contains ``q``)."""
        r = self.random()
        if r < 0.34:
            return self.choice(WORDS)
        if r < 0.56:
            return " ".join(self.rng.sample(WORDS, self.randint(2, 4)))
        if r < 0.72:
            return self.choice(SENTENCES) + self.choice(("", "", ".", "!", "...", ":", "?"))
        if r < 0.90:
            return self.choice(SYMBOLIC)
        if r < 0.95:
            return self.choice(CONTRACTIONS_DQ if q == '"' else QUOTED_SQ)
        if r < 0.98:
            return self.choice(WORDS).capitalize()
        return ""

    def string(self, q: str | None = None) -> str:
        """A complete string literal."""
        if q is None:
            q = self.quote()
        return q + self.text(q) + q

    def num(self) -> str:
        r = self.random()
        if r < 0.6:
            return str(self.randint(0, 10))
        if r < 0.8:
            return str(self.randint(11, 100))
        if r < 0.9:
            return self.choice(("255", "1000", "1024", "3600", "65536", "-1", "2048"))
        return self.choice(("0.5", "1.0", "3.14", "0.1", "2.5", "1e-3", "0.0", "100.0"))

    def atom(self) -> str:
        """A simple value: a number, a name or a string."""
        r = self.random()
        if r < 0.45:
            return self.num()
        if r < 0.75:
            return self.var()
        if r < 0.9:
            return self.string()
        return self.choice(("None", "True", "False", "[]", "{}", "()", "0"))

    def operand(self) -> str:
        """Something to compare against: a number, a name, a string or None."""
        r = self.random()
        if r < 0.4:
            return self.num()
        if r < 0.7:
            return self.var()
        if r < 0.9:
            return self.string()
        return "None"

    # -- expressions and statements ---------------------------------------------------------
    def expr(self, v: str) -> str:
        """An expression that uses ``v``."""
        c = self.choice
        r = self.randint(0, 13)
        if r == 0:
            return f"{v} + {self.num()}"
        if r == 1:
            return f"{v} * {self.num()}"
        if r == 2:
            return f"len({v})"
        if r == 3:
            return f"{self.func()}({v})"
        if r == 4:
            return f"{v}.{c(ATTRS)}"
        if r == 5:
            return f"{v}[{self.randint(0, 3)}]"
        if r == 6:
            return f"{c(('str', 'int', 'float', 'abs', 'sorted', 'list', 'max', 'min'))}({v})"
        if r == 7:
            return f"{v} - {self.var()}"
        if r == 8:
            return f"{v} // {self.randint(2, 10)}"
        if r == 9:
            return f"{v}.{c(('strip', 'lower', 'upper', 'copy', 'pop', 'keys', 'split'))}()"
        if r == 10:
            return f"{v} % {self.randint(2, 10)}"
        if r == 11:
            return f"{self.func()}({v}, {self.atom()})"
        if r == 12:
            return f"{v} ** 2"
        return v

    def cond(self, v: str) -> str:
        """A boolean condition about ``v``."""
        r = self.randint(0, 14)
        if r == 0:
            return f"{v} > {self.num()}"
        if r == 1:
            return f"{v} is None"
        if r == 2:
            return f"not {v}"
        if r == 3:
            return f"{v} in {self.pair()[0]}"
        if r == 4:
            return f"len({v}) > {self.randint(0, 10)}"
        if r == 5:
            return f"{v} % 2 == 0"
        if r == 6:
            return f"{v}.startswith({self.string()})"
        if r == 7:
            return f"{v} == {self.operand()}"
        if r == 8:
            return f"{v} < {self.var()}"
        if r == 9:
            return f"{v} is not None"
        if r == 10:
            return f"{v} != {self.operand()}"
        if r == 11:
            return f"isinstance({v}, {self.choice(('int', 'str', 'list', 'dict', 'float', 'tuple'))})"
        if r == 12:
            return f"{v} >= {self.num()} and {v} <= {self.num()}"
        if r == 13:
            return f"{self.func()}({v})"
        return v

    def stmt(self, v: str) -> str:
        """A one-line statement that mentions ``v`` (valid anywhere in a block)."""
        r = self.randint(0, 11)
        if r == 0:
            return f"{self.var()} = {self.expr(v)}"
        if r == 1:
            return f"print({v})"
        if r == 2:
            return f"{self.pair()[0]}.append({v})"
        if r == 3:
            return f"{self.var()} += {self.choice(('1', v, self.num()))}"
        if r == 4:
            return f"{self.func()}({v})"
        if r == 5:
            return f"{self.choice(('logger', 'log'))}.{self.choice(('debug', 'info'))}({self.string()}, {v})"
        if r == 6:
            return f"{v} = {self.expr(v)}"
        if r == 7:
            return "count += 1"
        if r == 8:
            return f"print({self.string()}, {v})"
        if r == 9:
            return f"self.{self.choice(ATTRS)} = {v}"
        if r == 10:
            return f"{self.var()}[{v}] = {self.atom()}"
        return f"total += {v}"

    def fstring(self, q: str | None = None) -> str:
        """An f-string literal with one or two ``{...}`` fields (never nested quotes)."""
        if q is None:
            q = self.quote()
        fields = (
            self.var(),
            self.var(),
            f"{self.var()}.{self.choice(ATTRS)}",
            f"len({self.pair()[0]})",
            f"{self.var()}:.2f",
            f"self.{self.choice(ATTRS)}",
            f"{self.var()}!r",
            f"{self.var()} + 1",
            f"{self.var()}[0]",
        )
        a = "{" + self.choice(fields) + "}"
        r = self.randint(0, 9)
        if r == 0:
            return f"f{q}{a}{q}"
        if r == 1:
            return f"f{q}{self.choice(WORDS)}: {a}{q}"
        if r == 2:
            return f"f{q}{a} {self.choice(WORDS)}{q}"
        if r == 3:
            b = "{" + self.choice(fields) + "}"
            return f"f{q}{a}: {b}{q}"
        if r == 4:
            return f"f{q}{self.choice(SENTENCES)}: {a}{q}"
        if r == 5:
            return f"f{q}{self.choice(SENTENCES)} {a}{self.choice(('.', '!', ''))}{q}"
        if r == 6:
            b = "{" + self.choice(fields) + "}"
            return f"f{q}{a}/{b}{q}"
        if r == 7:
            return f"f{q}{self.choice(WORDS)}={a}{q}"
        if r == 8:
            return f"f{q}({a}){q}"
        return f"f{q}{self.choice(WORDS).capitalize()} {a}, {self.choice(WORDS)}{q}"

    def comment(self) -> str:
        r = self.random()
        text = self.choice(COMMENTS)
        if r < 0.1:
            return f"# TODO: {text}"
        if r < 0.15:
            return f"# NOTE: {text}"
        if r < 0.6:
            return f"# {text.capitalize()}"
        return f"# {text}"

    def docstring(self) -> str:
        q3 = '"""' if self.random() < 0.85 else "'''"
        verb = self.choice(("Return", "Compute", "Build", "Read", "Write", "Check", "Parse",
                            "Update", "Load", "Collect", "Find", "Make"))
        noun = " ".join(self.rng.sample(WORDS, self.randint(1, 3)))
        return f"{q3}{verb} the {noun}.{q3}"
