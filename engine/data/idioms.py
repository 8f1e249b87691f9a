"""Generated simple Python idioms, mixed into the pretraining corpus.

A small model trained on a few million characters of real source code sees each of the task
behaviours (closing a string with its opening quote, ``]]`` after a nested list, ``.add`` after
``x = set()``, ``self.a = a`` in ``__init__`` ...) too rarely to learn them. This module writes short
(1-12 line) snippets of everyday Python in which those behaviours are common, with names, string
contents, numbers and the surrounding code (comments, docstrings, an unrelated preceding statement,
an enclosing function) drawn at random so that no single surface form is memorised.

Everything is deterministic for a given seed: all randomness comes from the ``random.Random``
passed in (never the global generator, never iteration over a ``set``), so a corpus can be
regenerated exactly. Output is printable ASCII plus newline, indented with four spaces.

This module holds the public API and the registry of templates (name, weight, whether it may be
wrapped in a function); the templates are in :mod:`engine.data.idiom_literals`,
:mod:`engine.data.idiom_defs` and :mod:`engine.data.idiom_statements`, the draws they use in
:mod:`engine.data.idiom_draw`, the name pools in :mod:`engine.data.names`.

Knows nothing about tasks, tokenizers, models or torch.
"""

from __future__ import annotations

import random
from typing import Callable

from engine.data.draws import indent
from engine.data.idiom_draw import _Draw
from engine.data.idiom_defs import (
    _t_class_init, _t_class_method, _t_dataclass_use, _t_def_kwargs, _t_def_positional, _t_lambda,
    _t_lambda_vs_def, _t_open_assign, _t_read_then_write, _t_return_tuple, _t_while_break,
    _t_while_true_return, _t_with_open_read, _t_with_open_write,
)
from engine.data.idiom_literals import (
    _t_append_list, _t_call_string, _t_counter, _t_dict_counting, _t_dict_literal, _t_dict_vs_list,
    _t_flat_and_nested, _t_flat_list, _t_fstring, _t_lambda_params, _t_list_comprehension,
    _t_list_literal, _t_list_of_strings, _t_literal_argument, _t_nested_list, _t_nested_list_argument,
    _t_plain_vs_fstring, _t_print_string, _t_set_add, _t_string_assign, _t_string_concat,
    _t_string_methods,
)
from engine.data.idiom_statements import (
    _t_assert, _t_augmented, _t_dict_items, _t_early_return, _t_enumerate, _t_enumerate_vs_range,
    _t_for_loop, _t_for_vs_while, _t_if_chain_values, _t_if_elif_else, _t_if_equals, _t_if_vs_ternary,
    _t_import, _t_main_guard, _t_nested_for, _t_range, _t_swap, _t_ternary, _t_try_except, _t_var_if,
    _t_while_loop,
)
from engine.data.names import MODULES

__all__ = ["TEMPLATE_NAMES", "generate_snippet", "generate_snippets"]


# --------------------------------------------------------------------------------------------
# Registry: (name, template, weight, may be wrapped in a function). The contrasts that the built-in
# tasks probe are weighted up: with the first demo recipe (equal weights, 40% snippets) only the
# quote and bracket tasks were learned in 3000 steps.
# --------------------------------------------------------------------------------------------

_Template = Callable[[_Draw], "list[str]"]

_REGISTRY: tuple[tuple[str, _Template, float, bool], ...] = (
    ("string_assign", _t_string_assign, 1.5, True),
    ("print_string", _t_print_string, 1.5, True),
    ("call_string", _t_call_string, 1.5, True),
    ("list_of_strings", _t_list_of_strings, 1.0, True),
    ("dict_literal", _t_dict_literal, 2.0, True),
    ("list_literal", _t_list_literal, 1.5, True),
    ("dict_vs_list", _t_dict_vs_list, 2.5, True),
    ("fstring", _t_fstring, 2.0, True),
    ("plain_vs_fstring", _t_plain_vs_fstring, 2.0, True),
    ("string_methods", _t_string_methods, 0.8, True),
    ("flat_list", _t_flat_list, 1.0, True),
    ("nested_list", _t_nested_list, 2.0, True),
    ("flat_and_nested", _t_flat_and_nested, 1.0, True),
    ("list_comprehension", _t_list_comprehension, 0.7, True),
    ("literal_argument", _t_literal_argument, 1.5, True),
    ("nested_list_argument", _t_nested_list_argument, 1.0, True),
    ("lambda_params", _t_lambda_params, 1.2, True),
    ("dict_counting", _t_dict_counting, 0.5, True),
    ("set_add", _t_set_add, 2.0, True),
    ("string_concat", _t_string_concat, 2.0, True),
    ("append_list", _t_append_list, 0.7, True),
    ("counter", _t_counter, 0.5, True),
    ("def_kwargs", _t_def_kwargs, 1.3, False),
    ("def_positional", _t_def_positional, 0.9, False),
    ("lambda", _t_lambda, 1.0, True),
    ("lambda_vs_def", _t_lambda_vs_def, 2.0, False),
    ("return_tuple", _t_return_tuple, 0.3, False),
    ("while_true_return", _t_while_true_return, 0.8, False),
    ("while_break", _t_while_break, 0.4, True),
    ("class_init", _t_class_init, 1.3, False),
    ("class_method", _t_class_method, 0.5, False),
    ("object_use", _t_dataclass_use, 0.5, True),
    ("with_open_read", _t_with_open_read, 1.5, True),
    ("with_open_write", _t_with_open_write, 1.5, True),
    ("open_assign", _t_open_assign, 1.5, True),
    ("read_then_write", _t_read_then_write, 0.3, True),
    ("for_loop", _t_for_loop, 1.0, True),
    ("while_loop", _t_while_loop, 1.0, True),
    ("for_vs_while", _t_for_vs_while, 1.0, True),
    ("nested_for", _t_nested_for, 1.0, True),
    ("enumerate", _t_enumerate, 1.0, True),
    ("range", _t_range, 1.0, True),
    ("enumerate_vs_range", _t_enumerate_vs_range, 1.5, True),
    ("dict_items", _t_dict_items, 0.4, True),
    ("if_elif_else", _t_if_elif_else, 1.1, True),
    ("if_chain_values", _t_if_chain_values, 0.7, True),
    ("ternary", _t_ternary, 0.9, True),
    ("if_vs_ternary", _t_if_vs_ternary, 1.5, True),
    ("if_equals", _t_if_equals, 1.5, True),
    ("var_if", _t_var_if, 0.7, True),
    ("early_return", _t_early_return, 0.5, False),
    ("swap", _t_swap, 0.9, True),
    ("try_except", _t_try_except, 0.5, True),
    ("import", _t_import, 0.3, False),
    ("assert", _t_assert, 0.4, True),
    ("main_guard", _t_main_guard, 0.2, False),
    ("augmented", _t_augmented, 0.5, True),
)

#: Names of all templates, in registry order.
TEMPLATE_NAMES: tuple[str, ...] = tuple(entry[0] for entry in _REGISTRY)

_BY_NAME = {entry[0]: entry for entry in _REGISTRY}
_CUM_WEIGHTS: list[float] = []
for _entry in _REGISTRY:
    _CUM_WEIGHTS.append((_CUM_WEIGHTS[-1] if _CUM_WEIGHTS else 0.0) + _entry[2])
del _entry

_MAX_LINES = 12


def _preceding_statement(d: _Draw) -> list[str]:
    """Some unrelated code before the idiom, so it does not always start a snippet."""
    r = d.randint(0, 9)
    if r == 0:
        return [f"import {d.choice(MODULES)[0]}"]
    if r == 1:
        return [f"{d.var()} = {d.atom()}"]
    if r == 2:
        return [f"{d.pair()[0]} = []"]
    if r == 3:
        return [f"{d.var()} = {d.func()}({d.var()})"]
    if r == 4:
        return [f"{d.var()} = {d.expr(d.var())}"]
    if r == 5:
        return [f"{d.var()} = {d.string()}"]
    if r == 6:
        return [d.comment()]
    if r == 7:
        return [f"{d.var()} = {d.atom()}", ""]
    if r == 8:
        return [f"print({d.var()})"]
    return [f"{d.func()}()"]


def generate_snippet(rng: random.Random, template: str | None = None) -> str:
    """Return one snippet (1-12 lines, no trailing newline), drawing only from ``rng``.

    ``template`` picks a template by name (see :data:`TEMPLATE_NAMES`); by default one is drawn
    at random, weighted towards the idioms the tasks test.
    """
    d = _Draw(rng)
    if template is None:
        _name, make, _w, wrappable = rng.choices(_REGISTRY, cum_weights=_CUM_WEIGHTS)[0]
    else:
        try:
            _name, make, _w, wrappable = _BY_NAME[template]
        except KeyError:
            known = ", ".join(TEMPLATE_NAMES)
            raise ValueError(f"unknown idiom template {template!r}; known: {known}") from None
    lines = make(d)

    # Surroundings: a comment, an unrelated statement before, an enclosing function.
    r = d.random()
    if r < 0.12:
        lines.insert(0, d.comment())
    elif r < 0.35:
        pre = _preceding_statement(d)
        if len(lines) + len(pre) <= _MAX_LINES:
            lines = pre + lines
    if wrappable and d.random() < 0.22 and len(lines) + 2 <= _MAX_LINES:
        params = ", ".join(d.vars(d.randint(0, 3)))
        head = [f"def {d.func()}({params}):"]
        if d.random() < 0.35:
            head.append("    " + d.docstring())
        body = indent(lines)
        if d.random() < 0.3 and len(head) + len(body) < _MAX_LINES:
            body.append(f"    return {d.var()}")
        lines = head + body
    return "\n".join(lines)


def generate_snippets(seed: int, n_chars: int) -> str:
    """Return at least ``n_chars`` characters of snippets separated by blank lines.

    Deterministic for a given ``seed``; the text ends with a newline (empty when ``n_chars <= 0``).
    """
    if n_chars <= 0:
        return ""
    rng = random.Random(seed)
    parts: list[str] = []
    total = -1  # account for the separators: "\n\n".join adds 2 per gap, plus the final "\n"
    while total < n_chars:
        s = generate_snippet(rng)
        parts.append(s)
        total += len(s) + 2
    return "\n\n".join(parts) + "\n"
