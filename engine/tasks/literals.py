"""Built-in task templates about literals: quotes, brackets, dict vs list, set vs string, f-strings.

Each builder returns the variants of one task; a variant draws one pair from a :class:`~engine.tasks.gen._Gen`
(or None when it came out too long). Variants at positions 2, 5, 8 ... are the held-out (val) templates.
Knows nothing about the registry, pools' contents, tokenizers or models.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from engine.tasks.gen import _Gen, _Variant
from engine.tasks.types import TaskPair


def _quotes(c: _Gen, build: Callable[[str], list[str]], **kw: Any) -> Optional[TaskPair]:
    return c.make(build('"'), '"', build("'"), "'", **kw)


def _single_double_quote() -> list[_Variant]:
    def assign(c: _Gen):
        v, t = c.var(), c.text()
        return _quotes(c, lambda q: [f"{v} = {q}{t}"])

    def print_(c: _Gen):
        t = c.text()
        return _quotes(c, lambda q: [f"print({q}{t}"])

    def call(c: _Gen):  # val
        fn, t = c.pick("call"), c.text()
        return _quotes(c, lambda q: [f"{fn}({q}{t}"])

    def list_item(c: _Gen):
        coll = c.pair()[0]
        w1, w2 = c.sample("word", 2)
        return _quotes(c, lambda q: [f"{coll} = [{q}{w1}{q}, {q}{w2}"])

    def dict_value(c: _Gen):
        d, k, t = c.var(), c.pick("word"), c.text()
        return _quotes(c, lambda q: [f"{d} = {{{q}{k}{q}: {q}{t}"])

    def compare(c: _Gen):  # val
        v, w = c.var(), c.pick("word")
        return _quotes(c, lambda q: [f"if {v} == {q}{w}"])

    def call_second_arg(c: _Gen):
        fn, v, t = c.func(), c.var(), c.text()
        return _quotes(c, lambda q: [f"{fn}({v}, {q}{t}"])

    def append(c: _Gen):
        coll, t = c.pair()[0], c.text()
        return _quotes(c, lambda q: [f"{coll}.append({q}{t}"])

    def return_(c: _Gen):  # val
        t = c.text()
        return _quotes(c, lambda q: [f"return {q}{t}"], wrap=1.0)

    return [assign, print_, call, list_item, dict_value, compare, call_second_arg, append, return_]


def _bracket_counting() -> list[_Variant]:
    def assign(c: _Gen):
        v, xs = c.var(), c.nums()
        return c.make([f"{v} = [[{xs}]"], "]", [f"{v} = [{xs}]"], "\n")

    def print_(c: _Gen):
        xs = c.nums()
        return c.make([f"print([[{xs}]"], "]", [f"print([{xs}]"], ")")

    def return_(c: _Gen):  # val
        xs = c.nums()
        return c.make([f"return [[{xs}]"], "]", [f"return [{xs}]"], "\n", wrap=1.0)

    def append(c: _Gen):
        coll, xs = c.pair()[0], c.nums()
        return c.make([f"{coll}.append([[{xs}]"], "]", [f"{coll}.append([{xs}]"], ")")

    def two_inner(c: _Gen):
        v, xs, ys = c.var(), c.nums(1, 3), c.nums(1, 3)
        return c.make([f"{v} = [[{xs}], [{ys}]"], "]", [f"{v} = [{xs}, {ys}]"], "\n")

    def len_(c: _Gen):  # val
        v, xs = c.var(), c.nums()
        return c.make([f"{v} = len([[{xs}]"], "]", [f"{v} = len([{xs}]"], ")")

    def call(c: _Gen):
        v, f, xs = c.var(), c.func(), c.nums()
        return c.make([f"{v} = {f}([[{xs}]"], "]", [f"{v} = {f}([{xs}]"], ")")

    def in_loop(c: _Gen):
        coll, el = c.pair()
        xs = c.nums()
        head = f"for {el} in {coll}:"
        return c.make([head, f"    {el} = [[{xs}]"], "]", [head, f"    {el} = [{xs}]"], "\n")

    def with_prev(c: _Gen):  # val
        v, w = c.sample("var", 2)
        xs, ys = c.nums(), c.nums()
        first = f"{w} = [{ys}]"
        return c.make([first, f"{v} = [[{xs}]"], "]", [first, f"{v} = [{xs}]"], "\n")

    return [assign, print_, return_, append, two_inner, len_, call, in_loop, with_prev]


def _accumulator_variants(fixed_name: Optional[str]) -> list[_Variant]:
    """``acc = set()`` -> ``acc.add`` (target ``.``) vs ``acc = ""`` -> ``acc += `` (target space)."""

    def setup(c: _Gen) -> tuple[str, str, str, str]:
        acc = fixed_name or c.pick("acc")
        while True:
            coll, el = c.pair()
            if acc not in (coll, el):
                break
        q = c.quote()
        return acc, coll, el, q

    def build(c: _Gen, acc: str, q: str, body: list[str]) -> Optional[TaskPair]:
        mid = [c.stmt(c.var())] if c.chance(0.2) else []
        a = [f"{acc} = set()"] + mid + body
        b = [f"{acc} = {q}{q}"] + mid + body
        return c.make(a, ".", b, " ")

    def loop(c: _Gen):
        acc, coll, el, q = setup(c)
        return build(c, acc, q, [f"for {el} in {coll}:", f"    {acc}"])

    def loop_if(c: _Gen):
        acc, coll, el, q = setup(c)
        return build(c, acc, q, [f"for {el} in {coll}:", f"    if {c.cond(el)}:", f"        {acc}"])

    def straight(c: _Gen):  # val
        acc, coll, el, q = setup(c)
        return build(c, acc, q, [f"{el} = {c.expr(c.var())}", acc])

    def loop_stmt(c: _Gen):
        acc, coll, el, q = setup(c)
        return build(c, acc, q, [f"for {el} in {coll}:", f"    {c.stmt(el)}", f"    {acc}"])

    def while_pop(c: _Gen):
        acc, coll, el, q = setup(c)
        return build(c, acc, q, [f"while {coll}:", f"    {el} = {coll}.pop()", f"    {acc}"])

    def enumerate_(c: _Gen):  # val
        acc, coll, el, q = setup(c)
        i = c.rng.choice(("i", "idx", "n"))
        if i in (acc, el):
            return None
        return build(c, acc, q, [f"for {i}, {el} in enumerate({coll}):", f"    {acc}"])

    return [loop, loop_if, straight, loop_stmt, while_pop, enumerate_]


def _bracket_brace() -> list[_Variant]:
    def simple(c: _Gen):
        v, k, q = c.var(), c.pick("word"), c.quote()
        return c.make([f"{v} = {{{q}{k}{q}"], ":", [f"{v} = [{q}{k}{q}"], ",")

    def second_key(c: _Gen):
        v, q = c.var(), c.quote()
        k1, k2 = c.sample("word", 2)
        n = c.num()
        return c.make([f"{v} = {{{q}{k1}{q}: {n}, {q}{k2}{q}"], ":",
                      [f"{v} = [{q}{k1}{q}, {n}, {q}{k2}{q}"], ",")

    def call(c: _Gen):  # val
        f, k, q = c.func(), c.pick("word"), c.quote()
        return c.make([f"{f}({{{q}{k}{q}"], ":", [f"{f}([{q}{k}{q}"], ",")

    def return_(c: _Gen):
        k, q = c.pick("word"), c.quote()
        return c.make([f"return {{{q}{k}{q}"], ":", [f"return [{q}{k}{q}"], ",", wrap=1.0)

    def multiline(c: _Gen):
        v, k, q = c.var(), c.pick("word"), c.quote()
        return c.make([f"{v} = {{", f"    {q}{k}{q}"], ":", [f"{v} = [", f"    {q}{k}{q}"], ",")

    def method(c: _Gen):  # val
        v, k, q = c.var(), c.pick("word"), c.quote()
        return c.make([f"{v}.update({{{q}{k}{q}"], ":", [f"{v}.extend([{q}{k}{q}"], ",")

    def attr(c: _Gen):
        a, k, q = c.pick("attr"), c.pick("word"), c.quote()
        return c.make([f"self.{a} = {{{q}{k}{q}"], ":", [f"self.{a} = [{q}{k}{q}"], ",")

    return [simple, second_key, call, return_, multiline, method, attr]


def _fstring_brace() -> list[_Variant]:
    """``f"...: `` -> ``{``; the same plain string -> its closing quote (then ``+ str(x)``)."""

    def fs(c: _Gen, build: Callable[[str], str], **kw: Any) -> Optional[TaskPair]:
        q = c.quote()
        return c.make([build(f"f{q}")], "{", [build(q)], q, **kw)

    def print_(c: _Gen):
        s = c.pick("sentence")
        return fs(c, lambda o: f"print({o}{s}: ")

    def assign(c: _Gen):
        v, w = c.var(), c.pick("word")
        return fs(c, lambda o: f"{v} = {o}{w}: ")

    def raise_(c: _Gen):  # val
        s = c.pick("sentence")
        return fs(c, lambda o: f"raise ValueError({o}{s}: ")

    def equals(c: _Gen):
        v, w = c.var(), c.pick("word")
        return fs(c, lambda o: f"{v} = {o}{w}=")

    def write(c: _Gen):
        h, w = c.pick("handle"), c.pick("word")
        return fs(c, lambda o: f"{h}.write({o}{w}: ")

    def augmented(c: _Gen):  # val
        v, s = c.var(), c.pick("sentence")
        return fs(c, lambda o: f"{v} += {o}{s}: ")

    def log(c: _Gen):
        fn, s = c.rng.choice(("logger.info", "logger.debug", "log.info")), c.pick("sentence")
        return fs(c, lambda o: f"{fn}({o}{s}: ")

    def in_loop(c: _Gen):
        coll, el = c.pair()
        w = c.pick("word")
        head = f"for {el} in {coll}:"
        q = c.quote()
        return c.make([head, f"    print(f{q}{w}: "], "{", [head, f"    print({q}{w}: "], q)

    def return_(c: _Gen):  # val
        w = c.pick("word")
        return fs(c, lambda o: f"return {o}{w}=", wrap=1.0)

    return [print_, assign, raise_, equals, write, augmented, log, in_loop, return_]
