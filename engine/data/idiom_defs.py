"""Idiom templates about definitions: functions and their parameters, lambdas vs defs, classes and
``__init__``, and opening files (modes that follow the file names).

See :mod:`engine.data.idiom_literals` for what a template is.
Knows nothing about the registry, the surroundings added to a snippet, tasks or tokenizers.
"""

from __future__ import annotations

from engine.data.idiom_draw import _Draw
from engine.data.names import ATTRS, READ_FILES, READ_HANDLES, READ_PATH_VARS, WRITE_FILES, WRITE_HANDLES, WRITE_PATH_VARS


# ---- functions and lambdas --------------------------------------------------------------------


def _default(d: _Draw) -> str:
    r = d.random()
    if r < 0.6:
        return "None"
    return d.choice(("0", "1", "True", "False", "''", '""', "10", "[]", "()", d.string()))


def _t_def_kwargs(d: _Draw) -> list[str]:
    """``def f(a, b=None, c=None):``: once one parameter has a default, all later ones do."""
    names = d.vars(d.randint(2, 5))
    n_pos = d.randint(0 if len(names) > 1 else 1, len(names) - 1)
    params = names[:n_pos] + [f"{p}={_default(d)}" for p in names[n_pos:]]
    if d.random() < 0.15:
        params.insert(0, "self")
    lines = [f"def {d.func()}({', '.join(params)}):"]
    if d.random() < 0.3:
        lines.append("    " + d.docstring())
    kw = names[n_pos]
    r = d.random()
    if r < 0.4:
        lines += [f"    if {kw} is None:", f"        {kw} = {d.atom()}"]
    elif r < 0.7:
        lines.append(f"    {d.stmt(kw)}")
    lines.append(f"    return {d.expr(names[0])}")
    return lines


def _t_def_positional(d: _Draw) -> list[str]:
    names = d.vars(d.randint(1, 4))
    lines = [f"def {d.func()}({', '.join(names)}):"]
    if d.random() < 0.25:
        lines.append("    " + d.docstring())
    if d.random() < 0.4:
        lines.append(f"    {d.stmt(names[-1])}")
    lines.append(f"    return {d.expr(d.choice(names))}")
    return lines


def _t_lambda(d: _Draw) -> list[str]:
    coll, el = d.pair()
    x = d.choice(("x", "s", "n", "item", "p", "k", "v", "t", el))
    r = d.randint(0, 5)
    if r == 0:
        return [f"{d.func()} = lambda {x}: {d.expr(x)}"]
    if r == 1:
        return [f"{coll}.sort(key=lambda {x}: {x}.{d.choice(ATTRS)})"]
    if r == 2:
        return [f"{d.var()} = sorted({coll}, key=lambda {x}: {x}[{d.randint(0, 2)}])"]
    if r == 3:
        return [f"{d.var()} = list(map(lambda {x}: {d.expr(x)}, {coll}))"]
    if r == 4:
        return [f"{d.var()} = list(filter(lambda {x}: {d.cond(x)}, {coll}))"]
    a, b = d.vars(2)
    return [f"{d.func()} = lambda {a}, {b}: {a} + {b}"]


def _t_lambda_vs_def(d: _Draw) -> list[str]:
    """The same function written as a lambda and as a def."""
    x = d.choice(("x", "n", "s", "value", "item", "a", "v"))
    e = d.expr(x)
    f = d.func()
    lam = [f"{f} = lambda {x}: {e}"]
    fn = [f"def {f}({x}):", f"    return {e}"]
    return lam + [""] + fn if d.random() < 0.5 else fn + [""] + lam


def _t_return_tuple(d: _Draw) -> list[str]:
    coll = d.pair()[0]
    f = d.func()
    a, b = d.vars(2)
    return [f"def {f}({coll}):", f"    return min({coll}), max({coll})", "",
            f"{a}, {b} = {f}({d.pair()[0]})"]


def _t_while_true_return(d: _Draw) -> list[str]:
    f = d.func()
    v = d.var()
    arg = d.var()
    lines = [f"def {f}({arg}):", "    while True:"]
    r = d.random()
    if r < 0.4:
        lines += [f"        {v} = {d.expr(arg)}", f"        if {d.cond(v)}:", f"            return {v}"]
    elif r < 0.7:
        lines += [f"        {v} = input({d.string()})", f"        if {v}:", f"            return {v}",
                  f"        print({d.string()})"]
    else:
        lines += ["        try:", f"            return {d.func()}({arg})",
                  f"        except {d.choice(('ValueError', 'KeyError', 'OSError'))}:",
                  f"            {arg} = {d.expr(arg)}"]
    return lines


def _t_while_break(d: _Draw) -> list[str]:
    v = d.var()
    return ["while True:", f"    {v} = {d.func()}()", f"    if {d.cond(v)}:", "        break",
            f"    {d.stmt(v)}"]


# ---- classes ---------------------------------------------------------------------------------


def _t_class_init(d: _Draw) -> list[str]:
    c = d.cls()
    attrs = d.attrs(d.randint(1, 4))
    base = d.choice(("", "", "", "(object)", "(Base)", f"({d.cls()})", "(Exception)"))
    params = list(attrs)
    if d.random() < 0.3:
        params[-1] = f"{params[-1]}={_default(d)}"
    lines = [f"class {c}{base}:"]
    if d.random() < 0.25:
        lines.append("    " + d.docstring())
    lines.append(f"    def __init__(self, {', '.join(params)}):")
    for a in attrs:
        lines.append(f"        self.{a} = {a}")
    if d.random() < 0.3:
        lines.append(f"        self.{d.choice(('items', 'cache', 'children', 'history', 'log'))} = []")
    return lines


def _t_class_method(d: _Draw) -> list[str]:
    c = d.cls()
    a, b = d.attrs(2)
    lines = [f"class {c}:", f"    def __init__(self, {a}):", f"        self.{a} = {a}", ""]
    r = d.random()
    if r < 0.4:
        lines += [f"    def {d.func()}(self):", f"        return self.{a}"]
    elif r < 0.7:
        q = d.quote()
        lines += ["    def __repr__(self):", f"        return f{q}{c}({{self.{a}!r}}){q}"]
    else:
        lines += [f"    def {d.func()}(self, {b}):", f"        self.{a} = {b}"]
    return lines


def _t_dataclass_use(d: _Draw) -> list[str]:
    c = d.cls()
    v = c.lower()
    attrs = d.attrs(d.randint(1, 3))
    args = ", ".join(d.atom() for _ in attrs)
    lines = [f"{v} = {c}({args})"]
    for a in attrs[: d.randint(1, len(attrs))]:
        lines.append(d.choice((f"print({v}.{a})", f"{v}.{a} = {d.atom()}", f"{d.var()} = {v}.{a}")))
    return lines


# ---- files -------------------------------------------------------------------------------------


def _file_target(d: _Draw, write: bool) -> str:
    """A file name literal or a path variable whose name says read or write."""
    if d.random() < 0.7:
        q = d.quote()
        return q + d.choice(WRITE_FILES if write else READ_FILES) + q
    return d.choice(WRITE_PATH_VARS if write else READ_PATH_VARS)


def _t_with_open_read(d: _Draw) -> list[str]:
    q = d.quote()
    target = _file_target(d, write=False)
    h = d.choice(READ_HANDLES)
    mode = d.choice((f", {q}r{q}", f", {q}r{q}", "", f", {q}r{q}, encoding={q}utf-8{q}",
                     f", {q}rb{q}"))
    lines = [f"with open({target}{mode}) as {h}:"]
    r = d.randint(0, 3)
    if r == 0:
        lines.append(f"    {d.var()} = {h}.read()")
    elif r == 1:
        lines += [f"    for line in {h}:", f"        {d.stmt('line')}"]
    elif r == 2:
        lines.append(f"    lines = {h}.readlines()")
    else:
        lines.append(f"    {d.var()} = json.load({h})")
    return lines


def _t_with_open_write(d: _Draw) -> list[str]:
    q = d.quote()
    target = _file_target(d, write=True)
    h = d.choice(WRITE_HANDLES)
    mode = d.choice((f"{q}w{q}", f"{q}w{q}", f"{q}w{q}, encoding={q}utf-8{q}", f"{q}a{q}", f"{q}wb{q}"))
    lines = [f"with open({target}, {mode}) as {h}:"]
    r = d.randint(0, 3)
    if r == 0:
        lines.append(f"    {h}.write({d.var()})")
    elif r == 1:
        coll, el = d.pair()
        lines += [f"    for {el} in {coll}:", f"        {h}.write({d.fstring(q)} + {q}\\n{q})"]
    elif r == 2:
        lines.append(f"    {h}.write({d.string(q)})")
    else:
        lines.append(f"    json.dump({d.var()}, {h})")
    return lines


def _t_open_assign(d: _Draw) -> list[str]:
    """``f = open(...)`` without ``with``: the line ends after the call."""
    write = d.random() < 0.35
    q = d.quote()
    target = _file_target(d, write=write)
    h = d.choice(WRITE_HANDLES if write else READ_HANDLES)
    if write:
        mode = d.choice((f", {q}w{q}", f", {q}w{q}", f", {q}a{q}"))
        body = [f"{h}.write({d.string(q)})"]
    else:
        mode = d.choice(("", "", f", {q}r{q}"))
        body = [d.choice((f"{d.var()} = {h}.read()", f"lines = {h}.readlines()",
                          f"{d.var()} = {h}.readline()"))]
    lines = [f"{h} = open({target}{mode})"] + body
    if d.random() < 0.7:
        lines.append(f"{h}.close()")
    return lines


def _t_read_then_write(d: _Draw) -> list[str]:
    """Read one file and write another: modes follow the names."""
    q = d.quote()
    src = q + d.choice(READ_FILES) + q
    dst = q + d.choice(WRITE_FILES) + q
    v = d.choice(("data", "text", "lines", "content", "rows"))
    return [f"with open({src}, {q}r{q}) as f:", f"    {v} = f.read()",
            f"with open({dst}, {q}w{q}) as f:", f"    f.write({v})"]
