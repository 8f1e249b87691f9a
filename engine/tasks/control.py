"""Built-in task templates about control flow: conditions, loops, else/elif, conditional expressions,
enumerate vs range, indentation.

See :mod:`engine.tasks.literals` for how variants work.
Knows nothing about the registry, pools' contents, tokenizers or models.
"""

from __future__ import annotations

from typing import Optional, Sequence

from engine.tasks.gen import _Gen, _Variant
from engine.tasks.types import TaskPair


def _if_equals() -> list[_Variant]:
    def after_assign(c: _Gen):
        v, w = c.sample("var", 2)
        first = f"{v} = {c.expr(w)}"
        return c.make([first, f"if {v} ="], "=", [first, f"{v} ="], " ")

    def in_loop(c: _Gen):
        coll, el = c.pair()
        head = f"for {el} in {coll}:"
        return c.make([head, f"    if {el} ="], "=", [head, f"    {el} ="], " ")

    def while_(c: _Gen):  # val
        v = c.var()
        return c.make([f"while {v} ="], "=", [f"{v} ="], " ")

    def elif_(c: _Gen):
        v = c.var()
        block = [f"if {c.cond(v)}:", f"    {c.stmt(v)}"]
        return c.make(block + [f"elif {v} ="], "=", block + [f"{v} ="], " ")

    def in_def(c: _Gen):
        v, w = c.sample("var", 2)
        head = f"def {c.func()}({v}, {w}):"
        return c.make([head, f"    if {v} ="], "=", [head, f"    {v} ="], " ", wrap=0.0)

    def attribute(c: _Gen):  # val
        v, a = c.var(), c.pick("attr")
        return c.make([f"if {v}.{a} ="], "=", [f"{v}.{a} ="], " ")

    def bare(c: _Gen):
        v = c.var()
        return c.make([f"if {v} ="], "=", [f"{v} ="], " ")

    def nested(c: _Gen):
        coll, el = c.pair()
        v = c.var()
        head = [f"for {el} in {coll}:", f"    if {c.cond(el)}:"]
        return c.make(head + [f"        if {v} ="], "=", head + [f"        {v} ="], " ", wrap=0.0)

    def self_attr(c: _Gen):  # val
        a = c.pick("attr")
        head = f"def {c.func()}(self):"
        return c.make([head, f"    if self.{a} ="], "=", [head, f"    self.{a} ="], " ", wrap=0.0)

    return [after_assign, in_loop, while_, elif_, in_def, attribute, bare, nested, self_attr]


def _for_while() -> list[_Variant]:
    def name(c: _Gen) -> str:
        coll, el = c.pair()
        return el if c.chance(0.6) else coll

    def bare(c: _Gen):
        v = name(c)
        return c.make([f"for {v}"], " ", [f"while {v}"], ":")

    def after_assign(c: _Gen):
        v = name(c)
        first = f"{v} = {c.func()}({c.var()})"
        return c.make([first, f"for {v}"], " ", [first, f"while {v}"], ":")

    def in_if(c: _Gen):  # val
        v, w = name(c), c.var()
        head = f"if {c.cond(w)}:"
        return c.make([head, f"    for {v}"], " ", [head, f"    while {v}"], ":")

    def after_init(c: _Gen):
        v, acc = name(c), c.var()
        if v == acc:
            return None
        first = f"{acc} = {c.rng.choice(('0', '[]', 'None', '1'))}"
        return c.make([first, f"for {v}"], " ", [first, f"while {v}"], ":")

    def in_def(c: _Gen):
        v = name(c)
        head = f"def {c.func()}({v}):"
        return c.make([head, f"    for {v}"], " ", [head, f"    while {v}"], ":", wrap=0.0)

    def nested(c: _Gen):  # val
        coll, el = c.pair()
        v = name(c)
        if v in (coll, el):
            return None
        head = f"for {el} in {coll}:"
        return c.make([head, f"    for {v}"], " ", [head, f"    while {v}"], ":")

    return [bare, after_assign, in_if, after_init, in_def, nested]


def _else_elif() -> list[_Variant]:
    def simple(c: _Gen):
        v = c.var()
        block = [f"if {c.cond(v)}:", f"    {c.stmt(v)}"]
        return c.make(block + ["else"], ":", block + ["elif"], " ")

    def after_elif(c: _Gen):
        v = c.var()
        block = [f"if {c.cond(v)}:", f"    {c.stmt(v)}", f"elif {c.cond(v)}:", f"    {c.stmt(v)}"]
        return c.make(block + ["else"], ":", block + ["elif"], " ")

    def values(c: _Gen):  # val
        v, q = c.var(), c.quote()
        w = c.pick("word")
        block = [f"if {v} == {q}{w}{q}:", f"    {c.stmt(v)}"]
        return c.make(block + ["else"], ":", block + ["elif"], " ")

    def in_loop(c: _Gen):
        coll, el = c.pair()
        block = [f"for {el} in {coll}:", f"    if {c.cond(el)}:", f"        {c.stmt(el)}"]
        return c.make(block + ["    else"], ":", block + ["    elif"], " ")

    def return_(c: _Gen):
        v = c.var()
        block = [f"def {c.func()}({v}):", f"    if {c.cond(v)}:", f"        return {c.atom()}"]
        return c.make(block + ["    else"], ":", block + ["    elif"], " ", wrap=0.0)

    def nested(c: _Gen):  # val
        v, w = c.sample("var", 2)
        block = [f"if {c.cond(v)}:", f"    if {c.cond(w)}:", f"        {c.stmt(w)}"]
        return c.make(block + ["    else"], ":", block + ["    elif"], " ")

    return [simple, after_elif, values, in_loop, return_, nested]


def _if_ternary() -> list[_Variant]:
    """``if <cond>`` -> ``:``; ``t = a if <cond>`` -> space (then ``else``)."""

    def assign(c: _Gen):
        v, t = c.sample("var", 2)
        cond, a = c.cond(v), c.atom()
        return c.make([f"if {cond}"], ":", [f"{t} = {a} if {cond}"], " ")

    def in_loop(c: _Gen):
        coll, el = c.pair()
        t = c.var()
        cond, a = c.cond(el), c.atom()
        head = f"for {el} in {coll}:"
        return c.make([head, f"    if {cond}"], ":", [head, f"    {t} = {a} if {cond}"], " ")

    def return_(c: _Gen):  # val
        v = c.var()
        cond, a = c.cond(v), c.atom()
        head = f"def {c.func()}({v}):"
        return c.make([head, f"    if {cond}"], ":", [head, f"    return {a} if {cond}"], " ",
                      wrap=0.0)

    def print_(c: _Gen):
        v = c.var()
        cond, a = c.cond(v), c.atom()
        return c.make([f"if {cond}"], ":", [f"print({a} if {cond}"], " ")

    def append(c: _Gen):
        coll, el = c.pair()
        cond, a = c.cond(el), c.atom()
        return c.make([f"if {cond}"], ":", [f"{coll}.append({a} if {cond}"], " ")

    def elif_(c: _Gen):  # val
        v, t = c.sample("var", 2)
        cond, a = c.cond(v), c.atom()
        block = [f"if {c.cond(v)}:", f"    {c.stmt(v)}"]
        return c.make(block + [f"elif {cond}"], ":", block + [f"{t} = {a} if {cond}"], " ")

    return [assign, in_loop, return_, print_, append, elif_]


def _enumerate_range() -> list[_Variant]:
    """``for i, item in `` -> ``e`` (enumerate); ``for i in `` -> ``r`` (range)."""

    def loop(c: _Gen, i: str, el: str, indent: str = "") -> tuple[list[str], list[str]]:
        return [f"{indent}for {i}, {el} in "], [f"{indent}for {i} in "]

    def names(c: _Gen) -> tuple[str, str, str]:
        while True:
            coll, el = c.pair()
            i = c.pick("loopvar")
            if i not in (coll, el):
                return coll, el, i

    def bare(c: _Gen):
        _, el, i = names(c)
        a, b = loop(c, i, el)
        return c.make(a, "e", b, "r")

    def after_list(c: _Gen):
        coll, el, i = names(c)
        first = f"{coll} = {c.func()}({c.var()})"
        a, b = loop(c, i, el)
        return c.make([first] + a, "e", [first] + b, "r")

    def nested(c: _Gen):  # val
        coll, el, i = names(c)
        oc, oe = c.pair()
        if oe in (el, i, coll):
            return None
        head = f"for {oe} in {oc}:"
        a, b = loop(c, i, el, "    ")
        return c.make([head] + a, "e", [head] + b, "r")

    def in_if(c: _Gen):
        coll, el, i = names(c)
        head = f"if {coll}:"
        a, b = loop(c, i, el, "    ")
        return c.make([head] + a, "e", [head] + b, "r")

    def after_init(c: _Gen):
        coll, el, i = names(c)
        v = c.var()
        if v in (el, i):
            return None
        first = f"{v} = {c.rng.choice(('0', '[]', '{}', 'None'))}"
        a, b = loop(c, i, el)
        return c.make([first] + a, "e", [first] + b, "r")

    def in_def(c: _Gen):  # val
        coll, el, i = names(c)
        head = f"def {c.func()}({coll}):"
        a, b = loop(c, i, el, "    ")
        return c.make([head] + a, "e", [head] + b, "r", wrap=0.0)

    return [bare, after_list, nested, in_if, after_init, in_def]


def _indent_for() -> list[_Variant]:
    """Indentation depth after nested ``for``s.

    Both prompts end after the newline and ``4*n`` spaces of a loop body's first line. With
    ``n + 1`` nested loops the body needs more indentation (target: a space); with ``n`` loops the
    body starts here, with the accumulator that the line before the loops set up (target: its
    first letter).
    """

    def loops(c: _Gen, k: int, indent: int = 0, ranges: bool = False) -> list[str]:
        out, used = [], set()
        for level in range(k):
            while True:
                v = c.pick("loopvar")
                if v not in used:
                    used.add(v)
                    break
            src = f"range({c.var()})" if ranges or c.chance(0.5) else c.pair()[0]
            out.append("    " * (indent + level) + f"for {v} in {src}:")
        return out

    def pair(c: _Gen, n: int, indent: int = 0, head: Sequence[str] = (),
             ranges: bool = False) -> Optional[TaskPair]:
        acc = c.pick("acc")
        init = "    " * indent + f"{acc} = {c.rng.choice(('0', '[]', '0', 'set()', chr(34) * 2))}"
        outer = loops(c, n + 1, indent, ranges)
        pa = list(head) + [init] + outer + ["    " * (indent + n)]
        pb = list(head) + [init] + outer[:n] + ["    " * (indent + n)]
        return c.make(pa, " ", pb, acc[0], pre=not head, wrap=0.0)

    def one(c: _Gen):
        return pair(c, 1)

    def one_ranges(c: _Gen):
        return pair(c, 1, ranges=True)

    def two(c: _Gen):  # val
        return pair(c, 2)

    def in_def(c: _Gen):
        return pair(c, 1, 1, [f"def {c.func()}({c.var()}):"])

    def after_line(c: _Gen):
        return pair(c, 1, 0, [f"{c.var()} = {c.expr(c.var())}"])

    def in_def_two(c: _Gen):  # val
        return pair(c, 2, 1, [f"def {c.func()}():"])

    return [one, one_ranges, two, in_def, after_line, in_def_two]
