"""Idiom templates about literals: string literals and their quotes, f-strings, dict vs list literals,
flat vs nested lists, comprehensions, and set vs string accumulators.

Each ``_t_*`` template takes a :class:`~engine.data.idiom_draw._Draw` and returns the lines of one
snippet, indented relative to column 0; :mod:`engine.data.idioms` registers them.
Knows nothing about the registry, the surroundings added to a snippet, tasks or tokenizers.
"""

from __future__ import annotations

from engine.data.idiom_draw import _Draw
from engine.data.names import ACCUMULATORS, SENTENCES, STRING_CALLS, WORDS


# ---- strings and quotes ---------------------------------------------------------------------


def _t_string_assign(d: _Draw) -> list[str]:
    lines = []
    for v in d.vars(d.randint(1, 3)):
        op = " = " if d.random() < 0.85 else " += "
        lines.append(f"{v}{op}{d.string()}")
    if d.random() < 0.3:
        lines.append(d.stmt(d.var()))
    return lines


def _t_print_string(d: _Draw) -> list[str]:
    q = d.quote()
    s = d.string(q)
    r = d.randint(0, 5)
    if r == 0:
        return [f"print({s})"]
    if r == 1:
        return [f"print({s}, {d.var()})"]
    if r == 2:
        return [f"print({s} + {d.expr(d.var())})"]
    if r == 3:
        return [f"print({s} % {d.var()})"]
    if r == 4:
        return [f"print({d.var()}, {s})", f"print({d.string(q)})"]
    return [f"if {d.cond(d.var())}:", f"    print({s})", "else:", f"    print({d.string(q)})"]


def _t_call_string(d: _Draw) -> list[str]:
    lines = []
    for _ in range(d.randint(1, 3)):
        fn = d.choice(STRING_CALLS)
        r = d.random()
        if fn == "parser.add_argument":
            q = d.quote()
            flag = d.choice(WORDS)
            lines.append(f"parser.add_argument({q}--{flag}{q}, default={d.string(q)}, help={d.string(q)})")
        elif r < 0.5:
            lines.append(f"{fn}({d.string()})")
        elif r < 0.75:
            lines.append(f"{fn}({d.var()}, {d.string()})")
        elif r < 0.9:
            lines.append(f"{d.var()} = {fn}({d.string()})")
        else:
            lines.append(f"raise {d.choice(('ValueError', 'KeyError', 'RuntimeError'))}({d.string()})")
            break
    return lines


def _t_list_of_strings(d: _Draw) -> list[str]:
    coll, el = d.pair()
    q = d.quote()
    strs = ", ".join(d.string(q if d.random() < 0.9 else None) for _ in range(d.randint(1, 5)))
    lines = [f"{coll} = [{strs}]"]
    r = d.random()
    if r < 0.3:
        lines += [f"for {el} in {coll}:", f"    print({el})"]
    elif r < 0.5:
        lines.append(f"{coll}.append({d.string(q)})")
    elif r < 0.6:
        lines.append(f"{d.var()} = {d.string(q)}.join({coll})")
    return lines


def _t_dict_literal(d: _Draw) -> list[str]:
    v = d.choice(("config", "options", "settings", "data", "person", "user", "params", "headers",
                  "row", "record", "info", "counts", "mapping", "defaults", "d", "result"))
    q = d.quote()
    keys = d.rng.sample(WORDS, d.randint(1, 4))
    entries = [f"{q}{k}{q}: {d.atom()}" for k in keys]
    if d.random() < 0.35:
        lines = [f"{v} = {{"] + [f"    {e}," for e in entries] + ["}"]
    else:
        lines = [f"{v} = {{{', '.join(entries)}}}"]
    r = d.random()
    if r < 0.3:
        lines.append(f"{d.var()} = {v}[{q}{keys[0]}{q}]")
    elif r < 0.5:
        lines.append(f"{v}[{d.string(q)}] = {d.atom()}")
    elif r < 0.6:
        lines.append(f"{d.var()} = {v}.get({q}{d.choice(keys)}{q}, {d.atom()})")
    return lines


def _t_list_literal(d: _Draw) -> list[str]:
    """Lists that start like a dict would: a string then a comma."""
    coll = d.pair()[0]
    q = d.quote()
    vals = []
    for _ in range(d.randint(2, 6)):
        vals.append(d.string(q) if d.random() < 0.6 else d.atom())
    lines = [f"{coll} = [{', '.join(vals)}]"]
    if d.random() < 0.3:
        lines.append(f"{d.var()} = {coll}[{d.randint(0, 1)}]")
    return lines


def _t_dict_vs_list(d: _Draw) -> list[str]:
    """The same keys written once as a dict and once as a flat list."""
    q = d.quote()
    keys = d.rng.sample(WORDS, d.randint(1, 3))
    vals = [d.num() for _ in keys]
    as_dict = ", ".join(f"{q}{k}{q}: {v}" for k, v in zip(keys, vals))
    as_list = ", ".join(f"{q}{k}{q}, {v}" for k, v in zip(keys, vals))
    a, b = d.vars(2)
    if d.random() < 0.5:
        return [f"{a} = {{{as_dict}}}", f"{b} = [{as_list}]"]
    return [f"{b} = [{as_list}]", f"{a} = {{{as_dict}}}"]


def _t_fstring(d: _Draw) -> list[str]:
    v = d.var()
    r = d.randint(0, 5)
    q = d.quote()
    if r == 0:
        return [f"{d.var()} = {d.fstring(q)}"]
    if r == 1:
        return [f"print({d.fstring(q)})"]
    if r == 2:
        coll, el = d.pair()
        return [f"for {el} in {coll}:", f"    print({d.fstring(q)})"]
    if r == 3:
        return [f"raise ValueError({d.fstring(q)})"]
    if r == 4:
        return [f"msg = {d.string(q)}", f"msg += {d.fstring(q)}", "print(msg)"]
    return [f"{v} = {d.string(q)}", f"{d.var()} = {d.fstring(q)}"]


def _t_plain_vs_fstring(d: _Draw) -> list[str]:
    """A plain string and an f-string side by side: ``{`` only in the f-string."""
    q = d.quote()
    v = d.var()
    word = d.choice(WORDS)
    lines = [f"{d.var()} = {q}{word} {d.choice(WORDS)}{q}", f"{d.var()} = f{q}{word} {{{v}}}{q}"]
    if d.random() < 0.5:
        lines.reverse()
    if d.random() < 0.4:
        lines.append(f"print({q}{d.choice(SENTENCES)}{q} + str({v}))")
    return lines


def _t_string_methods(d: _Draw) -> list[str]:
    q = d.quote()
    v = d.choice(("name", "text", "line", "s", "word", "value", "title", "key"))
    r = d.randint(0, 5)
    if r == 0:
        return [f"{v} = {v}.strip().lower()"]
    if r == 1:
        return [f"parts = {v}.split({q}{d.choice((',', ' ', ':', '=', '/', '|'))}{q})"]
    if r == 2:
        return [f"{d.var()} = {q}{d.choice((', ', ' ', '', '-', '/'))}{q}.join({d.pair()[0]})"]
    if r == 3:
        return [f"if {v}.startswith({d.string(q)}):", f"    {v} = {v}[{d.randint(1, 4)}:]"]
    if r == 4:
        return [f"{v} = {v}.replace({d.string(q)}, {d.string(q)})"]
    return [f"if {v}.endswith({d.string(q)}):", f"    {d.stmt(v)}"]


def _int_list(d: _Draw, lo: int = 1, hi: int = 4) -> str:
    """``lo`` to ``hi`` list items (mostly numbers, sometimes names), separated by commas."""
    return ", ".join(d.num() if d.random() < 0.85 else d.var() for _ in range(d.randint(lo, hi)))


# ---- brackets ---------------------------------------------------------------------------------


def _t_flat_list(d: _Draw) -> list[str]:
    coll, el = d.pair()
    lines = [f"{coll} = [{_int_list(d, 1, 6)}]"]
    r = d.random()
    if r < 0.3:
        lines.append(f"{d.var()} = sum({coll})")
    elif r < 0.5:
        lines.append(f"{coll}.append({d.atom()})")
    elif r < 0.65:
        lines.append(f"{d.var()} = {coll}[{d.randint(-1, 3)}]")
    elif r < 0.75:
        lines.append(f"{coll} += [{_int_list(d, 1, 3)}]")
    return lines


def _t_nested_list(d: _Draw) -> list[str]:
    v = d.choice(("grid", "matrix", "board", "rows", "table", "pairs", "m", "data", "points",
                  "cells", "nested", "groups", "blocks", "lists", "a", "b"))
    inner = [f"[{_int_list(d, 1, 4)}]" for _ in range(d.randint(1, 4))]
    r = d.random()
    if r < 0.7:
        lines = [f"{v} = [{', '.join(inner)}]"]
    elif r < 0.82:
        lines = [f"{v} = ["] + [f"    {i}," for i in inner] + ["]"]
    elif r < 0.9:
        lines = [f"{v} = [[{d.num()}] * {d.var()} for _ in range({d.var()})]"]
    else:
        lines = [f"{v} = [[{d.atom()}, [{_int_list(d, 1, 3)}]]]"]
    r = d.random()
    if r < 0.25:
        lines.append(f"{d.var()} = {v}[{d.randint(0, 2)}][{d.randint(0, 2)}]")
    elif r < 0.45:
        lines.append(f"{v}.append([{_int_list(d, 1, 3)}])")
    elif r < 0.55:
        lines.append(f"{d.var()} = [{v}[0]]")
    return lines


def _t_flat_and_nested(d: _Draw) -> list[str]:
    """A flat and a nested list next to each other, so ``]`` and ``]]`` contrast."""
    a, b = d.vars(2)
    flat = f"{a} = [{_int_list(d, 1, 4)}]"
    nested = f"{b} = [[{_int_list(d, 1, 3)}], [{_int_list(d, 1, 3)}]]"
    if d.random() < 0.3:
        nested = f"{b} = [[{_int_list(d, 1, 3)}]]"
    return [flat, nested] if d.random() < 0.5 else [nested, flat]


def _t_literal_argument(d: _Draw) -> list[str]:
    """Dict and list literals passed straight to a call or a method, or returned: after the opening
    ``({`` or ``([`` a string key is followed by ``:`` in a dict and by ``,`` in a list."""
    q = d.quote()
    keys = d.rng.sample(WORDS, d.randint(1, 3))
    as_dict = "{" + ", ".join(f"{q}{k}{q}: {d.atom()}" for k in keys) + "}"
    as_list = "[" + ", ".join(f"{q}{k}{q}" for k in keys) + "]"
    lit = as_dict if d.random() < 0.5 else as_list
    coll = d.pair()[0]
    r = d.randint(0, 6)
    if r == 0:
        line = f"{d.func()}({lit})"
    elif r == 1:
        line = f"{d.var()} = {d.func()}({lit}, {d.atom()})"
    elif r == 2:
        line = f"{d.var()}.update({as_dict})" if lit == as_dict else f"{coll}.extend({as_list})"
    elif r == 3:
        line = f"return {d.func()}({lit})"
    elif r == 4:
        line = f"print({lit})"
    elif r == 5:
        line = f"{coll}.append({lit})"
    else:
        line = f"{d.var()} = {d.func()}({d.var()}, {lit})"
    return [line]


def _t_nested_list_argument(d: _Draw) -> list[str]:
    """Nested lists where a flat one could stand: as arguments, returned, measured."""
    inner = [f"[{_int_list(d, 1, 3)}]" for _ in range(d.randint(1, 3))]
    nested = f"[{', '.join(inner)}]"
    flat = f"[{_int_list(d, 1, 4)}]"
    lit = nested if d.random() < 0.6 else flat
    r = d.randint(0, 4)
    if r == 0:
        return [f"return {lit}"]
    if r == 1:
        return [f"{d.var()} = len({lit})"]
    if r == 2:
        return [f"{d.var()} = {d.func()}({lit})"]
    if r == 3:
        return [f"{d.pair()[0]}.append({lit})"]
    return [f"{d.var()} = {flat}", f"{d.var()} = {nested}"]


def _t_lambda_params(d: _Draw) -> list[str]:
    """Lambdas with several parameters or defaults; sometimes the same signature as a def."""
    names = d.vars(d.randint(2, 3))
    params = list(names)
    if d.random() < 0.4:
        params[-1] = f"{params[-1]}={d.atom()}"
    body = " + ".join(names) if d.random() < 0.5 else f"{d.func()}({', '.join(names)})"
    f = d.func()
    lam = [f"{f} = lambda {', '.join(params)}: {body}"]
    if d.random() < 0.4:
        return lam + ["", f"def {f}({', '.join(params)}):", f"    return {body}"]
    if d.random() < 0.3:
        return [f"{d.var()} = sorted({d.pair()[0]}, key=lambda {names[0]}: ({names[0]}, {d.atom()}))"]
    return lam


def _t_list_comprehension(d: _Draw) -> list[str]:
    coll, el = d.pair()
    r = d.randint(0, 4)
    out = d.choice(("result", "squares", "cleaned", "filtered", "out", "names", "values", "keep"))
    if r == 0:
        return [f"{out} = [{d.expr(el)} for {el} in {coll}]"]
    if r == 1:
        return [f"{out} = [{el} for {el} in {coll} if {d.cond(el)}]"]
    if r == 2:
        return [f"{out} = {{{el}: {d.expr(el)} for {el} in {coll}}}"]
    if r == 3:
        return [f"{out} = [[{el}] for {el} in {coll}]"]
    return [f"{out} = sorted({el} for {el} in {coll})"]


def _t_dict_counting(d: _Draw) -> list[str]:
    coll, el = d.pair()
    counts = d.choice(("counts", "freq", "histogram", "tally", "seen", "index"))
    r = d.random()
    if r < 0.5:
        return [f"{counts} = {{}}", f"for {el} in {coll}:", f"    {counts}[{el}] = {counts}.get({el}, 0) + 1"]
    if r < 0.8:
        return [f"{counts} = {{}}", f"for {el} in {coll}:", f"    if {el} not in {counts}:",
                f"        {counts}[{el}] = 0", f"    {counts}[{el}] += 1"]
    return [f"{counts} = defaultdict(list)", f"for {el} in {coll}:",
            f"    {counts}[{d.expr(el)}].append({el})"]


# ---- set vs string accumulators ---------------------------------------------------------------


def _accumulate_loop(d: _Draw, acc: str, update: str) -> list[str]:
    """A loop (or not) around ``update``, which mentions the element name ``{el}``."""
    coll, el = d.pair()
    body = update.replace("{el}", el)
    r = d.random()
    if r < 0.45:
        return [f"for {el} in {coll}:", f"    {body}"]
    if r < 0.7:
        return [f"for {el} in {coll}:", f"    if {d.cond(el)}:", f"        {body}"]
    if r < 0.85:
        return [f"{el} = {d.expr(d.var())}", body]
    return [f"for {el} in {coll}:", f"    {d.stmt(el)}", f"    {body}"]


def _t_set_add(d: _Draw) -> list[str]:
    acc = d.choice(ACCUMULATORS)
    lines = [f"{acc} = set()"]
    if d.random() < 0.25:
        lines.append(d.stmt(d.var()))
    arg = d.choice(("{el}", "{el}", "{el}", "{el}.lower()", "str({el})", "{el}.name", "{el}[0]"))
    lines += _accumulate_loop(d, acc, f"{acc}.add({arg})")
    if d.random() < 0.25:
        lines.append(f"return {acc}" if d.random() < 0.5 else f"print(len({acc}))")
    return lines


def _t_string_concat(d: _Draw) -> list[str]:
    acc = d.choice(ACCUMULATORS)
    q = d.quote()
    lines = [f"{acc} = {q}{q}"]
    if d.random() < 0.25:
        lines.append(d.stmt(d.var()))
    arg = d.choice(("{el}", "{el}", "str({el})", "{el} + " + q + " " + q, q + "\\n" + q,
                    "{el}.upper()", "{el}[0]"))
    lines += _accumulate_loop(d, acc, f"{acc} += {arg}")
    if d.random() < 0.25:
        lines.append(f"return {acc}" if d.random() < 0.5 else f"print({acc})")
    return lines


def _t_append_list(d: _Draw) -> list[str]:
    coll, el = d.pair()
    out = d.choice(("result", "out", "found", "matches", "selected", "output", "keep", "acc"))
    lines = [f"{out} = []", f"for {el} in {coll}:"]
    if d.random() < 0.5:
        lines += [f"    if {d.cond(el)}:", f"        {out}.append({el})"]
    else:
        lines.append(f"    {out}.append({d.expr(el)})")
    if d.random() < 0.4:
        lines.append(f"return {out}")
    return lines


def _t_counter(d: _Draw) -> list[str]:
    v = d.choice(("total", "count", "n", "acc", "s", "result", "score", "size"))
    coll, el = d.pair()
    op = d.choice(("+=", "+=", "+=", "-=", "*="))
    init = "1" if op == "*=" else "0"
    return [f"{v} = {init}", f"for {el} in {coll}:", f"    {v} {op} {d.expr(el)}"]
