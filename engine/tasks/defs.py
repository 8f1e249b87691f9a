"""Built-in task templates about names and definitions: swaps, lambdas vs defs, ``with open``, file
modes, ``__init__`` assignments, keyword defaults.

See :mod:`engine.tasks.literals` for how variants work.
Knows nothing about the registry, pools' contents, tokenizers or models.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from engine.tasks.gen import _Gen, _Variant
from engine.tasks.types import TaskPair


def _var_swap() -> list[_Variant]:
    """``a, b = b, `` -> first letter of ``a``; the twin swaps the names."""

    def swap(c: _Gen, build: Callable[[str, str], list[str]], **kw: Any) -> Optional[TaskPair]:
        a, b = c.distinct_first("var")
        return c.make(build(a, b), a[0], build(b, a), b[0], **kw)

    def plain(c: _Gen):
        return swap(c, lambda a, b: [f"{a}, {b} = {b}, "])

    def if_greater(c: _Gen):
        return swap(c, lambda a, b: [f"if {a} > {b}:", f"    {a}, {b} = {b}, "])

    def index(c: _Gen):  # val
        coll = c.pair()[0]
        i, j = c.distinct_first("index")
        line = lambda i, j: [f"{coll}[{i}], {coll}[{j}] = {coll}[{j}], {coll}["]  # noqa: E731
        return c.make(line(i, j), i[0], line(j, i), j[0])

    def fib(c: _Gen):
        n = c.var()
        return swap(c, lambda a, b: [f"for _ in range({n}):", f"    {a}, {b} = {b}, "])

    def assigned(c: _Gen):
        x, y = c.num(), c.num()
        return swap(c, lambda a, b: [f"{a}, {b} = {x}, {y}", f"{a}, {b} = {b}, "])

    def attrs(c: _Gen):  # val
        a, b = c.distinct_first("attr")
        line = lambda a, b: [f"self.{a}, self.{b} = self.{b}, self."]  # noqa: E731
        return c.make(line(a, b), a[0], line(b, a), b[0])

    return [plain, if_greater, index, fib, assigned, attrs]


def _lambda_func() -> list[_Variant]:
    """``f = lambda x`` -> ``:``; ``def f(x`` -> ``)``: a lambda's parameters have no parentheses."""

    def one(c: _Gen):
        f, x = c.func(), c.var()
        return c.make([f"{f} = lambda {x}"], ":", [f"def {f}({x}"], ")", wrap=0.0)

    def two(c: _Gen):
        f = c.func()
        x, y = c.sample("var", 2)
        return c.make([f"{f} = lambda {x}, {y}"], ":", [f"def {f}({x}, {y}"], ")", wrap=0.0)

    def three(c: _Gen):  # val
        f = c.func()
        x, y, z = c.sample("var", 3)
        return c.make([f"{f} = lambda {x}, {y}, {z}"], ":", [f"def {f}({x}, {y}, {z}"], ")",
                      wrap=0.0)

    def after_data(c: _Gen):
        f, x = c.func(), c.var()
        first = f"{c.pair()[0]} = [{c.nums()}]"
        return c.make([first, f"{f} = lambda {x}"], ":", [first, f"def {f}({x}"], ")", wrap=0.0)

    def sort_key(c: _Gen):
        coll, el = c.pair()
        return c.make([f"{coll}.sort(key=lambda {el}"], ":", [f"def sort_key({el}"], ")", wrap=0.0)

    def default(c: _Gen):  # val
        f = c.func()
        x, y = c.sample("var", 2)
        d = c.num()
        return c.make([f"{f} = lambda {x}, {y}={d}"], ":", [f"def {f}({x}, {y}={d}"], ")",
                      wrap=0.0)

    def nested(c: _Gen):
        f, g, x = c.func(), c.func(), c.var()
        if f == g:
            return None
        head = f"def {g}():"
        return c.make([head, f"    {f} = lambda {x}"], ":", [head, f"    def {f}({x}"], ")",
                      wrap=0.0)

    return [one, two, three, after_data, sort_key, default, nested]


def _file(c: _Gen, write: bool) -> str:
    q = c.quote()
    return q + c.pick("write_file" if write else "read_file") + q


def _with_as() -> list[_Variant]:
    """``with open(...)`` -> space (then ``as f:``); ``f = open(...)`` -> newline."""

    def pair(c: _Gen, call: str, **kw: Any) -> Optional[TaskPair]:
        h = c.pick("handle")
        return c.make([f"with {call}"], " ", [f"{h} = {call}"], "\n", **kw)

    def literal(c: _Gen):
        return pair(c, f"open({_file(c, c.chance(0.4))})")

    def mode(c: _Gen):
        write = c.chance(0.5)
        q = c.quote()
        m = c.rng.choice(("w", "a")) if write else "r"
        return pair(c, f"open({_file(c, write)}, {q}{m}{q})")

    def path_var(c: _Gen):  # val
        write = c.chance(0.5)
        p = c.pick("write_path" if write else "read_path")
        q = c.quote()
        m = f", {q}w{q}" if write else ""
        return pair(c, f"open({p}{m})")

    def encoding(c: _Gen):
        q = c.quote()
        return pair(c, f"open({_file(c, False)}, encoding={q}utf-8{q})")

    def after_line(c: _Gen):
        v = c.var()
        h = c.pick("handle")
        first = f"{v} = {c.expr(c.var())}"
        call = f"open({_file(c, c.chance(0.4))})"
        return c.make([first, f"with {call}"], " ", [first, f"{h} = {call}"], "\n")

    def joined(c: _Gen):  # val
        d = c.pick("dir")
        q = c.quote()
        return pair(c, f"open(os.path.join({d}, {q}{c.pick('read_file')}{q}))")

    return [literal, mode, path_var, encoding, after_line, joined]


def _with_open() -> list[_Variant]:
    """The mode after ``open(<file>, "`` follows the file name: ``r`` for inputs, ``w`` for outputs."""

    def pair(c: _Gen, build: Callable[[str, str], list[str]], src: str, dst: str,
             **kw: Any) -> Optional[TaskPair]:
        q = c.quote()
        return c.make(build(src, q), "r", build(dst, q), "w", **kw)

    def literal(c: _Gen):
        q = c.quote()
        src, dst = q + c.pick("read_file") + q, q + c.pick("write_file") + q
        return pair(c, lambda f, q: [f"with open({f}, {q}"], src, dst)

    def path_var(c: _Gen):
        return pair(c, lambda f, q: [f"with open({f}, {q}"], c.pick("read_path"), c.pick("write_path"))

    def assign(c: _Gen):  # val
        h = c.pick("handle")
        q = c.quote()
        src, dst = q + c.pick("read_file") + q, q + c.pick("write_file") + q
        return pair(c, lambda f, q: [f"{h} = open({f}, {q}"], src, dst)

    def after_line(c: _Gen):
        q = c.quote()
        src, dst = q + c.pick("read_file") + q, q + c.pick("write_file") + q
        first = f"{c.var()} = {c.expr(c.var())}"
        return pair(c, lambda f, q: [first, f"with open({f}, {q}"], src, dst)

    def in_loop(c: _Gen):
        coll, el = c.pair()
        q = c.quote()
        src, dst = q + c.pick("read_file") + q, q + c.pick("write_file") + q
        head = f"for {el} in {coll}:"
        return pair(c, lambda f, q: [head, f"    with open({f}, {q}"], src, dst)

    def joined(c: _Gen):  # val
        d = c.pick("dir")
        q = c.quote()
        src = f"os.path.join({d}, {q}{c.pick('read_file')}{q})"
        dst = f"os.path.join({d}, {q}{c.pick('write_file')}{q})"
        return pair(c, lambda f, q: [f"with open({f}, {q}"], src, dst)

    return [literal, path_var, assign, after_line, in_loop, joined]


def _class_init() -> list[_Variant]:
    """In ``__init__``, ``self.<attr> = `` -> the first letter of the parameter ``<attr>``."""

    def build(c: _Gen, params: list[str], done: list[str], base: str = "",
              extra: Sequence[str] = ()) -> list[str]:
        head = [f"class {c.pick('cls')}{base}:", f"    def __init__(self, {', '.join(params)}):"]
        return head + list(extra) + [f"        self.{p} = {p}" for p in done]

    def ask(c: _Gen, h: list[str], a: str, b: str):
        """The pair: after ``self.a = `` comes ``a``'s first letter, after ``self.b = `` ``b``'s."""
        return c.make(h + [f"        self.{a} = "], a[0], h + [f"        self.{b} = "], b[0], wrap=0.0)

    def two(c: _Gen):
        a, b = c.distinct_first("attr")
        h = build(c, [a, b], [])
        return ask(c, h, a, b)

    def three_after_first(c: _Gen):
        p0 = c.pick("attr")
        a, b = c.distinct_first("attr")
        if p0 in (a, b):
            return None
        h = build(c, [p0, a, b], [p0])
        return ask(c, h, a, b)

    def base_default(c: _Gen):  # val
        a, b = c.distinct_first("attr")
        base = f"({c.pick('cls')})"
        h = build(c, [a, f"{b}={c.pick('default')}"], [], base)
        return ask(c, h, a, b)

    def reversed_order(c: _Gen):
        a, b = c.distinct_first("attr")
        h = build(c, [b, a], [])
        return ask(c, h, a, b)

    def with_list(c: _Gen):
        a, b = c.distinct_first("attr")
        extra = [f"        self.{c.rng.choice(('cache', 'history', 'log'))} = []"]
        h = build(c, [a, b], [], extra=extra)
        return ask(c, h, a, b)

    def super_init(c: _Gen):  # val
        a, b = c.distinct_first("attr")
        h = build(c, [a, b], [], f"({c.pick('cls')})", extra=["        super().__init__()"])
        return ask(c, h, a, b)

    return [two, three_after_first, base_default, reversed_order, with_list, super_init]


def _final_kwarg() -> list[_Variant]:
    """After a parameter with a default, the next parameter needs one too: ``=`` vs ``)``."""

    def sig(c: _Gen, names: list[str], dflt_at: int, prefix: str = "") -> tuple[str, str]:
        # A: every parameter from dflt_at up to the last (unfinished) one has a default, as Python
        # requires; B: none has.
        with_d = [f"{n}={c.pick('default')}" if dflt_at <= i < len(names) - 1 else n
                  for i, n in enumerate(names)]
        return ", ".join(prefix.split() + with_d), ", ".join(prefix.split() + names)

    def pair(c: _Gen, k: int, dflt_at: int, *, method: bool = False, deco: str = ""):
        names = c.sample("var", k)
        f = c.func()
        pa, pb = sig(c, names, dflt_at, "self," if method else "")
        indent = "    " if method else ""
        head = [f"class {c.pick('cls')}:"] if method else []
        if deco:
            head.append(indent + deco)
        return c.make(head + [f"{indent}def {f}({pa}"], "=", head + [f"{indent}def {f}({pb}"], ")",
                      wrap=0.0)

    def three(c: _Gen):
        return pair(c, 3, 1)

    def two(c: _Gen):
        return pair(c, 2, 0)

    def four(c: _Gen):  # val
        return pair(c, 4, c.rng.randint(0, 2))

    def method(c: _Gen):
        return pair(c, 2, 0, method=True)

    def decorated(c: _Gen):
        return pair(c, 3, c.rng.randint(0, 1), deco=c.rng.choice(("@staticmethod", "@property",
                                                                   "@lru_cache", "@cache")))

    def first_of_three(c: _Gen):  # val
        return pair(c, 3, 0)

    return [three, two, four, method, decorated, first_of_three]
