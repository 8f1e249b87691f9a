"""The built-in task registry: each task's name, description and template variants, and how pairs
are drawn from them (``split="val"`` uses every third variant and the other half of every pool).

Knows nothing about task files, tokenizers, encoding or models.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.errors import UserError
from engine.tasks.control import _else_elif, _enumerate_range, _for_while, _if_equals, _if_ternary, _indent_for
from engine.tasks.defs import _class_init, _final_kwarg, _lambda_func, _var_swap, _with_as, _with_open
from engine.tasks.gen import _Gen, _Variant
from engine.tasks.literals import (
    _accumulator_variants, _bracket_brace, _bracket_counting, _fstring_brace, _single_double_quote,
)
from engine.tasks.types import Task, TaskPair


@dataclass(frozen=True)
class _Spec:
    name: str
    description: str
    variants: tuple[_Variant, ...]


def _variants_for(spec: _Spec, split: str) -> list[_Variant]:
    val = split == "val"
    return [v for i, v in enumerate(spec.variants) if (i % 3 == 2) == val]


def _builtin_pairs(spec: _Spec, split: str, n: int, seed: int) -> list[TaskPair]:
    rng = random.Random(f"circuit-inspector/task/{spec.name}/{split}/{seed}")
    gen = _Gen(rng, split)
    variants = _variants_for(spec, split)
    out: list[TaskPair] = []
    seen: set[TaskPair] = set()
    attempts, limit = 0, 200 * n + 2000
    while len(out) < n:
        attempts += 1
        if attempts > limit:
            raise UserError(
                f"task {spec.name!r} could make only {len(out)} distinct {split} pairs "
                f"(asked for {n}); ask for fewer pairs"
            )
        pair = rng.choice(variants)(gen)
        if pair is None or pair in seen:
            continue
        seen.add(pair)
        out.append(pair)
    return out


_SPECS: tuple[_Spec, ...] = (
    _Spec("single_double_quote",
          'Close a string with the quote that opened it: `x = "hello` -> `"`, `x = \'hello` -> `\'` '
          "(assignments, calls, list items, dict values, comparisons).",
          tuple(_single_double_quote())),
    _Spec("bracket_counting",
          "Nested vs flat list. Both prompts end just after a list closes with `]`: after a nested "
          "list (`x = [[1, 2]`) the outer list must close (`]`); after a flat one (`x = [1, 2]`) the "
          "statement ends (newline) or the enclosing call closes (`)`).",
          tuple(_bracket_counting())),
    _Spec("set_or_string",
          "After `acc = set()` a later `acc` continues with `.` (`.add`); after `acc = \"\"` with a "
          "space (` +=`). Names vary and both prompts end on the variable name.",
          tuple(_accumulator_variants(None))),
    _Spec("set_or_string_fixedvarname",
          "set_or_string with the variable always named `x`: `x = set()` ... `x` -> `.`; "
          "`x = \"\"` ... `x` -> space. Only the earlier initialiser tells them apart.",
          tuple(_accumulator_variants("x"))),
    _Spec("bracket_brace",
          "Inside a dict a string key is followed by `:`, inside a list by `,`: `d = {\"a\"` -> `:`, "
          "`d = [\"a\"` -> `,`.",
          tuple(_bracket_brace())),
    _Spec("if_equals",
          "`==` in a condition vs `=` in an assignment: `if x =` -> `=`, `x =` -> space "
          "(also elif, while, attributes).",
          tuple(_if_equals())),
    _Spec("for_while",
          "A loop header's name: `for x` -> space (` in`), `while x` -> `:`.",
          tuple(_for_while())),
    _Spec("else_elif",
          "After an if-block, `else` is followed by `:` and `elif` by a space (then a condition). "
          "The prompts end on different characters (the keyword itself is the contrast).",
          tuple(_else_elif())),
    _Spec("fstring_brace",
          "`{` only in f-strings: `print(f\"Total: ` -> `{`; the plain `print(\"Total: ` -> its "
          "closing quote (the value is then concatenated or passed separately).",
          tuple(_fstring_brace())),
    _Spec("if_ternary",
          "A condition in an if-statement ends with `:`; the same condition in a conditional "
          "expression continues with a space (` else`): `if x > 0` -> `:`, `y = 1 if x > 0` -> space.",
          tuple(_if_ternary())),
    _Spec("var_swap",
          "Swapping: `a, b = b, ` -> `a` (first letter of the first name); the twin swaps the "
          "roles: `b, a = a, ` -> `b`. Names have different first letters.",
          tuple(_var_swap())),
    _Spec("lambda_func",
          "A lambda's parameters end with `:`, a def's with `)`: `f = lambda x` -> `:`, "
          "`def f(x` -> `)`.",
          tuple(_lambda_func())),
    _Spec("with_as",
          "`with open(...)` continues with a space (` as f:`); `f = open(...)` ends the line "
          "(newline).",
          tuple(_with_as())),
    _Spec("with_open",
          "The mode string follows the file name: `open(\"input.txt\", \"` -> `r`, "
          "`open(\"output.txt\", \"` -> `w` (also path variables such as input_path / output_path).",
          tuple(_with_open())),
    _Spec("enumerate_range",
          "Two loop variables call for enumerate, one for range: `for i, item in ` -> `e`, "
          "`for i in ` -> `r`.",
          tuple(_enumerate_range())),
    _Spec("class_init",
          "In `__init__`, copy the parameter named by the attribute: `self.name = ` -> `n`, "
          "`self.size = ` -> `s` (the two attributes start with different letters).",
          tuple(_class_init())),
    _Spec("final_kwarg",
          "Once a parameter has a default, the next one needs one too: `def f(a, b=None, c` -> `=`, "
          "`def f(a, b, c` -> `)`.",
          tuple(_final_kwarg())),
    _Spec("indent_for",
          "Indentation after nested loops: both prompts end 4*n spaces into a loop body; with n+1 "
          "nested `for`s more indentation follows (space), with n the body starts (the first letter "
          "of the accumulator set up before the loops).",
          tuple(_indent_for())),
)


def _builtin_task(spec: _Spec) -> Task:
    def make_pairs(split: str, n: int, seed: int) -> list[TaskPair]:
        return _builtin_pairs(spec, split, n, seed)

    return Task(spec.name, spec.description, "builtin", make_pairs)


#: The built-in tasks by name.
BUILTIN_TASKS: dict[str, Task] = {spec.name: _builtin_task(spec) for spec in _SPECS}
