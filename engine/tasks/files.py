"""User task files (JSON; no Python needed): reading, validating and splitting them.

Form A, explicit pairs::

    {"name": "my_task", "description": "what it tests",
     "pairs": [{"prompt_a": "x = \\"hi", "target_a": "\\"", "prompt_b": "x = 'hi", "target_b": "'"},
               ...]}

Form B, templates with slots; every ``{slot}`` in the four strings of a template is filled with every
value of that slot (the cartesian product, templates in file order, slots in order of first
appearance, values in file order); write ``{{`` and ``}}`` for literal braces::

    {"name": "quote_templates", "description": "...",
     "templates": [{"prompt_a": "{v} = \\"{word}", "target_a": "\\"",
                    "prompt_b": "{v} = '{word}", "target_b": "'"}],
     "slots": {"v": ["x", "name"], "word": ["hello", "world", "data", "spam"]}}

An expansion larger than :data:`MAX_TEMPLATE_PAIRS` (5000) pairs is subsampled deterministically to
that many. Rules (each broken rule is a :class:`UserError` that says what to fix): ``name`` is a
non-empty string that is not a built-in task name; ``description`` is optional text; exactly one of
``pairs`` / ``templates`` (with ``slots``); every prompt and target is a non-empty string; ``target_a``
differs from ``target_b``; at least 8 pairs and no duplicate pairs. Non-ASCII text is allowed (the
char tokenizer maps it to ``<unk>``; the BPE tokenizer handles it). Whether a target is one token is
checked only when the task is encoded for a tokenizer (:func:`encode_task`).

File tasks split their pairs deterministically: pair ``i`` (in file / expansion order) is held out
for validation when ``i % 4 == 3``; the rest train. :meth:`Task.pairs` then returns
``min(n, available)`` pairs of the split, shuffled by ``seed``.

Knows nothing about tokenizers, encoding or models (built-in tasks only for their names).
"""

from __future__ import annotations

import random
import string
import sys
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.fileio import check_name, read_json
from engine.tasks.builtin import BUILTIN_TASKS
from engine.tasks.types import MAX_TEMPLATE_PAIRS, MIN_FILE_PAIRS, Task, TaskPair

_PAIR_FIELDS = ("prompt_a", "target_a", "prompt_b", "target_b")
_TOP_FIELDS = ("name", "description", "pairs", "templates", "slots")


def _check_fields(obj: Any, where: str, src: str) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise UserError(f"{src}: {where} must be an object with the fields {', '.join(_PAIR_FIELDS)}")
    unknown = sorted(set(obj) - set(_PAIR_FIELDS))
    if unknown:
        raise UserError(f"{src}: {where} has unknown field(s) {', '.join(map(repr, unknown))}; "
                        f"the fields are {', '.join(_PAIR_FIELDS)}")
    for f in _PAIR_FIELDS:
        if f not in obj:
            raise UserError(f"{src}: {where} is missing the field {f!r}")
        if not isinstance(obj[f], str):
            raise UserError(f"{src}: {where} field {f!r} must be a string, got {type(obj[f]).__name__}")
        if obj[f] == "":
            kind = "prompt" if f.startswith("prompt") else "target"
            raise UserError(f"{src}: {where} has an empty {f!r}; every pair needs a non-empty "
                            f"{kind} on both sides")
    if obj["target_a"] == obj["target_b"]:
        raise UserError(f"{src}: {where} has the same target on both sides ({obj['target_a']!r}); "
                        "target_a and target_b must differ, or the pair contrasts nothing")
    return {f: obj[f] for f in _PAIR_FIELDS}


def _template_slots(fields: dict[str, str], where: str, src: str) -> list[str]:
    """Slot names used by a template, in order of first appearance (validates the syntax)."""
    names: list[str] = []
    fmt = string.Formatter()
    for f in _PAIR_FIELDS:
        try:
            parsed = list(fmt.parse(fields[f]))
        except ValueError as exc:
            raise UserError(f"{src}: {where} field {f!r} has a bad slot ({exc}); write slots as "
                            "{name} and literal braces as {{ and }}") from None
        for _lit, name, spec, conv in parsed:
            if name is None:
                continue
            if not name.isidentifier() or spec or conv:
                raise UserError(f"{src}: {where} field {f!r} has a bad slot {{{name}}}; slots are "
                                "plain names such as {word} (write literal braces as {{ and }})")
            if name not in names:
                names.append(name)
    return names


def _template_inputs(data: dict[str, Any], src: str) -> tuple[list[Any], dict[str, Any]]:
    """The file's ``templates`` and ``slots``, checked: a non-empty list and lists of strings."""
    templates = data["templates"]
    if not isinstance(templates, list) or not templates:
        raise UserError(f"{src}: 'templates' must be a non-empty list of template objects")
    slots = data.get("slots", {})
    if not isinstance(slots, dict):
        raise UserError(f"{src}: 'slots' must be an object mapping slot names to lists of strings")
    for k, vals in slots.items():
        if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
            raise UserError(f"{src}: slot {k!r} must be a non-empty list of strings")
    return templates, slots


def _parse_template(t: Any, ti: int, slots: dict[str, Any],
                    src: str) -> tuple[dict[str, str], list[str], list[int], int]:
    """Template ``ti`` checked, with its slot names (in order of first appearance), each slot's number
    of values, and the number of pairs it expands to."""
    where = f"template {ti}"
    if not isinstance(t, dict):
        raise UserError(f"{src}: {where} must be an object with the fields {', '.join(_PAIR_FIELDS)}")
    # Check field presence / types (targets are checked after filling).
    for f in _PAIR_FIELDS:
        if f not in t:
            raise UserError(f"{src}: {where} is missing the field {f!r}")
        if not isinstance(t[f], str):
            raise UserError(f"{src}: {where} field {f!r} must be a string, got {type(t[f]).__name__}")
    unknown = sorted(set(t) - set(_PAIR_FIELDS))
    if unknown:
        raise UserError(f"{src}: {where} has unknown field(s) {', '.join(map(repr, unknown))}; "
                        f"the fields are {', '.join(_PAIR_FIELDS)}")
    names = _template_slots(t, where, src)
    missing = [n for n in names if n not in slots]
    if missing:
        known = ", ".join(slots) or "none"
        raise UserError(f"{src}: {where} uses unknown slot(s) {', '.join('{' + m + '}' for m in missing)}; "
                        f"define them under 'slots' (defined: {known})")
    sizes = [len(slots[n]) for n in names]
    count = 1
    for s in sizes:
        count *= s
    return t, names, sizes, count


def _fill_template(t: dict[str, str], ti: int, names: list[str], sizes: list[int], r: int,
                   slots: dict[str, Any], src: str) -> tuple[TaskPair, str]:
    """Pair ``r`` of template ``ti``'s expansion (the last slot varies fastest), and where it came from."""
    values: dict[str, str] = {}
    for name, size in reversed(list(zip(names, sizes))):  # last slot varies fastest
        r, j = divmod(r, size)
        values[name] = slots[name][j]
    filled = {f: t[f].format(**values) for f in _PAIR_FIELDS}
    desc = f"template {ti}"
    if names:
        desc += " with " + ", ".join(f"{n}={values[n]!r}" for n in names)
    return TaskPair(**_check_fields(filled, desc, src)), desc


def _expand_templates(data: dict[str, Any], src: str) -> list[tuple[TaskPair, str]]:
    templates, slots = _template_inputs(data, src)
    parsed = [_parse_template(t, ti, slots, src) for ti, t in enumerate(templates)]
    total = sum(p[3] for p in parsed)
    if total > sys.maxsize:
        raise UserError(f"{src}: its templates expand to {total:.3e} pairs; at most {MAX_TEMPLATE_PAIRS} are used, "
                        f"so give the slots fewer values")
    if total > MAX_TEMPLATE_PAIRS:
        chosen = sorted(random.Random(0).sample(range(total), MAX_TEMPLATE_PAIRS))
    else:
        chosen = range(total)
    out: list[tuple[TaskPair, str]] = []
    starts, acc = [], 0
    for p in parsed:
        starts.append(acc)
        acc += p[3]
    ti = 0
    for idx in chosen:
        while idx >= starts[ti] + parsed[ti][3]:
            ti += 1
        t, names, sizes, _count = parsed[ti]
        out.append(_fill_template(t, ti, names, sizes, idx - starts[ti], slots, src))
    return out


def load_task_file(path: Path) -> Task:
    """Read a JSON task file (pairs or templates with slots; see the module docstring)."""
    path = Path(path)
    src = f"task file {path}"
    data = read_json(path, what="task file")
    if not isinstance(data, dict):
        raise UserError(f"{src} must hold a JSON object with 'name', 'description' and 'pairs' "
                        "(or 'templates' and 'slots')")
    unknown = sorted(set(data) - set(_TOP_FIELDS))
    if unknown:
        raise UserError(f"{src} has unknown field(s) {', '.join(map(repr, unknown))}; "
                        f"the fields are {', '.join(_TOP_FIELDS)}")
    name = data.get("name")
    if name is None:
        raise UserError(f"{src} is missing the field 'name' (the task's name)")
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{src}: 'name' must be a non-empty string")
    try:
        check_name(name, "task name")
    except UserError as exc:
        raise UserError(f"{src}: {exc}") from None
    if name in BUILTIN_TASKS:
        raise UserError(f"{src}: the name {name!r} is a built-in task; give your task another name")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise UserError(f"{src}: 'description' must be a string")
    has_pairs, has_templates = "pairs" in data, "templates" in data
    if has_pairs == has_templates:
        raise UserError(f"{src} must have exactly one of 'pairs' (a list of pairs) or 'templates' "
                        "(with 'slots')")
    if "slots" in data and not has_templates:
        raise UserError(f"{src}: 'slots' only goes with 'templates'")
    if has_pairs:
        raw = data["pairs"]
        if not isinstance(raw, list):
            raise UserError(f"{src}: 'pairs' must be a list of objects with the fields "
                            f"{', '.join(_PAIR_FIELDS)}")
        items = [(TaskPair(**_check_fields(p, f"pair {i}", src)), f"pair {i}") for i, p in enumerate(raw)]
    else:
        items = _expand_templates(data, src)
    if len(items) < MIN_FILE_PAIRS:
        raise UserError(f"{src} has {len(items)} pair(s); a task needs at least {MIN_FILE_PAIRS} "
                        "(a quarter are held out for validation)")
    first: dict[TaskPair, str] = {}
    for pair, where in items:
        if pair in first:
            raise UserError(f"{src}: {where} duplicates {first[pair]}; remove the repeated pair")
        first[pair] = where
    pairs = [p for p, _ in items]
    split_pairs = {
        "train": tuple(p for i, p in enumerate(pairs) if i % 4 != 3),
        "val": tuple(p for i, p in enumerate(pairs) if i % 4 == 3),
    }

    def make_pairs(split: str, n: int, seed: int) -> list[TaskPair]:
        pool = list(split_pairs[split])
        random.Random(f"circuit-inspector/file-task/{seed}").shuffle(pool)
        return pool[:n]

    return Task(name, description, str(path), make_pairs)
