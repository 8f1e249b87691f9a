"""Idiom templates about statements: for and while loops, enumerate vs range, if/elif/else and
conditional expressions, swaps, try/except, imports, asserts, augmented assignments.

See :mod:`engine.data.idiom_literals` for what a template is.
Knows nothing about the registry, the surroundings added to a snippet, tasks or tokenizers.
"""

from __future__ import annotations

from engine.data.idiom_draw import _Draw
from engine.data.names import MODULES, WORDS


# ---- loops -------------------------------------------------------------------------------------


def _t_for_loop(d: _Draw) -> list[str]:
    coll, el = d.pair()
    src = d.choice((coll, coll, coll, f"self.{coll}", f"sorted({coll})", f"{coll}[1:]",
                    f"reversed({coll})", f"{coll}.values()", f"{coll}.split()"))
    lines = [f"for {el} in {src}:"]
    if d.random() < 0.2:
        lines += [f"    if {d.cond(el)}:", "        continue"]
    for _ in range(d.randint(1, 2)):
        lines.append(f"    {d.stmt(el)}")
    return lines


def _t_while_loop(d: _Draw) -> list[str]:
    r = d.randint(0, 4)
    if r == 0:
        i = d.choice(("i", "n", "k", "count", "j", "pos", "step"))
        limit = d.choice(("n", "10", "len(items)", "limit", "size", "100"))
        return [f"{i} = 0", f"while {i} < {limit}:", f"    {d.stmt(i)}", f"    {i} += 1"]
    if r == 1:
        s = d.choice(("stack", "queue", "todo", "pending", "frontier", "work"))
        return [f"while {s}:", f"    {d.choice(('node', 'item', 'x', 'job'))} = {s}.pop()",
                f"    {d.stmt(d.var())}"]
    if r == 2:
        v = d.var()
        return [f"while {v} > {d.choice(('0', '1', 'limit'))}:", f"    {v} = {v} // 2",
                "    count += 1"]
    if r == 3:
        return ["while not done:", f"    done = {d.func()}()"]
    v = d.choice(("node", "current", "cur", "p", "head"))
    return [f"while {v} is not None:", f"    {d.stmt(v)}", f"    {v} = {v}.next"]


def _t_for_vs_while(d: _Draw) -> list[str]:
    """The same name after ``for`` and after ``while``."""
    coll, el = d.pair()
    return [f"for {el} in {coll}:", f"    {d.stmt(el)}", f"while {el}:", f"    {el} = {d.expr(el)}"]


def _t_nested_for(d: _Draw) -> list[str]:
    depth = d.choice((2, 2, 2, 3))
    loop_vars = d.choice((("i", "j", "k"), ("row", "col", "ch"), ("x", "y", "z"), ("a", "b", "c"),
                          ("r", "c", "d"), ("i", "k", "m")))
    lines = []
    for level in range(depth):
        v = loop_vars[level]
        src = d.choice((f"range({d.choice(('n', 'm', 'rows', 'cols', 'len(grid)', '10', 'size'))})",
                        d.pair()[0]))
        lines.append("    " * level + f"for {v} in {src}:")
    body = d.choice((f"total += grid[{loop_vars[0]}][{loop_vars[1]}]",
                     f"print({loop_vars[0]}, {loop_vars[1]})",
                     f"{d.pair()[0]}.append(({loop_vars[0]}, {loop_vars[1]}))",
                     d.stmt(loop_vars[depth - 1]),
                     f"if {d.cond(loop_vars[depth - 1])}:"))
    lines.append("    " * depth + body)
    if body.endswith(":"):
        lines.append("    " * (depth + 1) + d.choice(("count += 1", "continue", "break",
                                                         d.stmt(loop_vars[0]))))
    if d.random() < 0.4:
        back = d.randint(0, depth - 1)
        lines.append("    " * back + d.stmt(loop_vars[back]))
    return lines


def _t_enumerate(d: _Draw) -> list[str]:
    coll, el = d.pair()
    i = d.choice(("i", "i", "idx", "index", "n", "pos", "k", "lineno", "j"))
    start = d.choice(("", "", "", ", 1", ", start=1"))
    body = d.choice((f"print({i}, {el})", f"{coll}[{i}] = {d.expr(el)}",
                     f"{d.var()}[{el}] = {i}", f"print(f\"{{{i}}}: {{{el}}}\")"))
    if d.random() < 0.2:
        return [f"for {i}, {el} in enumerate({coll}{start}):", f"    if {d.cond(el)}:",
                f"        return {i}"]
    return [f"for {i}, {el} in enumerate({coll}{start}):", f"    {body}"]


def _t_range(d: _Draw) -> list[str]:
    coll, el = d.pair()
    i = d.choice(("i", "i", "j", "k", "n", "idx", "step", "_"))
    src = d.choice((f"range({d.var()})", f"range(len({coll}))", f"range(1, {d.var()})",
                    f"range({d.randint(1, 10)})", f"range(0, {d.var()}, {d.randint(2, 4)})",
                    f"range({d.var()} - 1, -1, -1)"))
    body = d.choice((f"print({i})", f"{coll}[{i}] = {d.atom()}", f"total += {coll}[{i}]",
                     d.stmt(i), f"{coll}.append({i} * {i})"))
    return [f"for {i} in {src}:", f"    {body}"]


def _t_enumerate_vs_range(d: _Draw) -> list[str]:
    coll, el = d.pair()
    a = [f"for i, {el} in enumerate({coll}):", f"    print(i, {el})"]
    b = [f"for i in range(len({coll})):", f"    print(i, {coll}[i])"]
    return a + b if d.random() < 0.5 else b + a


def _t_dict_items(d: _Draw) -> list[str]:
    k, v = d.choice((("k", "v"), ("key", "value"), ("name", "score"), ("word", "count"),
                     ("a", "b"), ("x", "y")))
    m = d.choice(("d", "counts", "config", "mapping", "scores", "table", "data"))
    src = d.choice((f"{m}.items()", f"{m}.items()", f"zip({d.pair()[0]}, {d.pair()[0]})",
                    f"sorted({m}.items())"))
    return [f"for {k}, {v} in {src}:", f"    {d.stmt(v)}"]


# ---- conditionals ------------------------------------------------------------------------------


def _t_if_elif_else(d: _Draw) -> list[str]:
    v = d.var()
    lines = [f"if {d.cond(v)}:", f"    {d.stmt(v)}"]
    for _ in range(d.randint(0, 2)):
        lines += [f"elif {d.cond(v)}:", f"    {d.stmt(v)}"]
    if d.random() < 0.7:
        lines += ["else:", f"    {d.stmt(v)}"]
    return lines


def _t_if_chain_values(d: _Draw) -> list[str]:
    v = d.choice(("mode", "cmd", "op", "kind", "action", "choice", "command", "status"))
    q = d.quote()
    words = d.rng.sample(WORDS, d.randint(2, 3))
    lines = [f"if {v} == {q}{words[0]}{q}:", f"    {d.stmt(v)}"]
    for w in words[1:]:
        lines += [f"elif {v} == {q}{w}{q}:", f"    {d.stmt(v)}"]
    if d.random() < 0.6:
        lines += ["else:", f"    raise ValueError({d.fstring(q)})" if d.random() < 0.4
                  else f"    {d.stmt(v)}"]
    return lines


def _t_ternary(d: _Draw) -> list[str]:
    v = d.var()
    c = d.cond(v)
    r = d.randint(0, 4)
    if r == 0:
        return [f"{d.var()} = {d.atom()} if {c} else {d.atom()}"]
    if r == 1:
        return [f"return {d.expr(v)} if {c} else {d.atom()}"]
    if r == 2:
        q = d.quote()
        return [f"print({d.string(q)} if {c} else {d.string(q)})"]
    if r == 3:
        return [f"{v} = {v} if {v} is not None else {d.atom()}"]
    return [f"sign = 1 if {v} >= 0 else -1"]


def _t_if_vs_ternary(d: _Draw) -> list[str]:
    """The same condition as an ``if`` statement and inside a conditional expression."""
    v = d.var()
    c = d.cond(v)
    a, b = d.atom(), d.atom()
    t = d.var()
    stmt = [f"if {c}:", f"    {t} = {a}", "else:", f"    {t} = {b}"]
    tern = [f"{t} = {a} if {c} else {b}"]
    return stmt + tern if d.random() < 0.5 else tern + stmt


def _t_if_equals(d: _Draw) -> list[str]:
    """``if x == y:`` in a condition next to ``x = y`` assignments."""
    x, y = d.vars(2)
    r = d.randint(0, 4)
    if r == 0:
        return [f"{x} = {y}", f"if {x} == {d.atom()}:", f"    {d.stmt(x)}"]
    if r == 1:
        return [f"if {x} == {y}:", f"    {x} = {d.expr(y)}"]
    if r == 2:
        return [f"if {x} == {y}:", "    return True", "return False"]
    if r == 3:
        return [f"{x} = {d.expr(y)}", f"{y} = {d.atom()}", f"if {x} == {y}:", f"    print({x})"]
    return [f"while {x} == {d.atom()}:", f"    {x} = {d.func()}()"]


def _t_var_if(d: _Draw) -> list[str]:
    """A variable set in both branches of an ``if``, then used."""
    v = d.choice(("label", "result", "color", "name", "value", "status", "msg", "size", "x"))
    w = d.var()
    q = d.quote()
    lines = [f"if {d.cond(w)}:", f"    {v} = {d.string(q)}", "else:", f"    {v} = {d.string(q)}"]
    lines.append(d.choice((f"print({v})", f"return {v}", f"{d.pair()[0]}.append({v})")))
    return lines


def _t_early_return(d: _Draw) -> list[str]:
    f = d.func()
    v = d.var()
    return [f"def {f}({v}):", f"    if {d.cond(v)}:", f"        return {d.atom()}",
            f"    return {d.expr(v)}"]


# ---- misc ----------------------------------------------------------------------------------------


def _t_swap(d: _Draw) -> list[str]:
    r = d.randint(0, 4)
    if r <= 1:
        a, b = d.vars(2)
        return [f"{a}, {b} = {b}, {a}"]
    if r == 2:
        a, b = d.choice((("a", "b"), ("prev", "curr"), ("x", "y"), ("lo", "hi")))
        return [f"{a}, {b} = 0, 1", f"for _ in range({d.var()}):", f"    {a}, {b} = {b}, {a} + {b}"]
    if r == 3:
        coll = d.pair()[0]
        i, j = d.choice((("i", "j"), ("a", "b"), ("lo", "hi"), ("i", "i + 1")))
        return [f"{coll}[{i}], {coll}[{j}] = {coll}[{j}], {coll}[{i}]"]
    a, b = d.vars(2)
    return [f"if {a} > {b}:", f"    {a}, {b} = {b}, {a}"]


def _t_try_except(d: _Draw) -> list[str]:
    v = d.var()
    exc = d.choice(("ValueError", "KeyError", "IndexError", "OSError", "TypeError", "Exception",
                    "FileNotFoundError", "ZeroDivisionError"))
    lines = ["try:", f"    {v} = {d.expr(d.var())}", f"except {exc}:"]
    if d.random() < 0.3:
        lines[-1] = f"except {exc} as e:"
        lines.append(f"    print({d.string()}, e)")
    lines.append(f"    {v} = {d.atom()}")
    if d.random() < 0.2:
        lines += ["finally:", f"    {d.func()}()"]
    return lines


def _t_import(d: _Draw) -> list[str]:
    mod, use = d.choice(MODULES)
    lines = [f"import {mod}"]
    if d.random() < 0.3:
        other = d.choice(MODULES)[0]
        if other != mod:
            lines.append(f"import {other}")
    lines.append(f"{d.var()} = {use}")
    return lines


def _t_assert(d: _Draw) -> list[str]:
    v = d.var()
    r = d.randint(0, 3)
    if r == 0:
        return [f"assert {v} == {d.atom()}"]
    if r == 1:
        return [f"assert {d.cond(v)}, {d.string()}"]
    if r == 2:
        return [f"{v} = {d.func()}({d.atom()})", f"assert {v} == {d.atom()}"]
    return [f"assert isinstance({v}, {d.choice(('int', 'str', 'list', 'dict'))})"]


def _t_main_guard(d: _Draw) -> list[str]:
    q = d.quote()
    call = d.choice(("main()", "sys.exit(main())", "run()", "unittest.main()"))
    return [f"if __name__ == {q}__main__{q}:", f"    {call}"]


def _t_augmented(d: _Draw) -> list[str]:
    v = d.var()
    lines = [f"{v} = {d.num()}"]
    for _ in range(d.randint(1, 3)):
        op = d.choice(("+=", "-=", "*=", "//=", "+=", "+="))
        lines.append(f"{v} {op} {d.var() if d.random() < 0.3 else d.num()}")
    return lines
