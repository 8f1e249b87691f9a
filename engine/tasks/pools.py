"""The identifier / value pools of the built-in tasks, as data: the shared pools of
:mod:`engine.data.names` (plus the entries only the tasks use) and the pools only the tasks have.

Every pool is split in two by :func:`engine.data.names.split_pool` (even positions train, odd positions
val), so held-out pairs use names that training pairs never see. The order of every pool is part of
the data: a draw picks by position, so reordering or extending a pool changes every task pair drawn
from a seed.

Knows nothing about how pairs are drawn, templates, tokenizers or models.
"""

from __future__ import annotations

from typing import Any

from engine.data.names import (
    ACCUMULATORS, ATTRS, CLASSES, COMMENTS, FUNCS, MODULES, PAIRS, READ_FILES, READ_PATH_VARS,
    SENTENCES, STRING_CALLS, SYMBOLIC_BASE, VARS, WORDS, WRITE_FILES, WRITE_PATH_VARS, split_pool,
)
from engine.tasks.types import SPLITS

__all__ = ["SPLIT_POOLS", "TASK_POOLS"]


def _without(pool: tuple[Any, ...], *names: Any) -> tuple[Any, ...]:
    """The entries of ``pool`` other than ``names``, each once, in the order of the pool."""
    return tuple(dict.fromkeys(x for x in pool if x not in names))


#: Every pool of the built-in tasks, by kind.
TASK_POOLS: dict[str, tuple[Any, ...]] = {
    "var": VARS + ("p", "q", "r", "u", "d", "f", "g", "h", "j", "big", "small"),
    "pair": PAIRS + (("students", "student"), ("cities", "city"), ("animals", "animal"),
                     ("letters", "letter")),
    "acc": ACCUMULATORS + ("codes", "marks", "tokens", "pieces"),
    "func": _without(FUNCS, "score") + ("key_func",),
    "cls": CLASSES + ("Student",),
    "attr": ATTRS + ("verbose", "message"),
    "word": WORDS + ("score", "price"),
    "sentence": SENTENCES + (
        "Total", "Result", "Score", "Count", "Name", "Average", "Elapsed time", "Current value",
        "Number of items",
    ),
    "symbolic": SYMBOLIC_BASE + (
        "key=value", "n/a", "%Y-%m-%d", "42", "3.14", "*.py", "--help", "#", "-",
    ),
    "read_file": READ_FILES,
    "write_file": WRITE_FILES + ("report.csv", "results.txt"),
    "read_path": READ_PATH_VARS,
    "write_path": WRITE_PATH_VARS + ("save_path",),
    "handle": ("f", "fh", "fp", "handle", "stream", "file", "infile", "out", "src", "dst"),
    "dir": ("base_dir", "root", "folder", "data_dir", "out_dir", "directory", "path", "home"),
    "index": ("i", "j", "k", "lo", "hi", "a", "b", "left", "right", "n", "m", "idx", "pos", "p"),
    "loopvar": ("i", "j", "k", "n", "idx", "pos", "index", "step", "row", "col", "r", "c"),
    "call": _without(
        STRING_CALLS, "parser.add_argument", "os.path.join", "self.assertEqual", "text.split",
        "name.startswith", "line.endswith", "path.endswith", "value.replace", "s.strip",
        "print_message", "TypeError", "open_file", "self.write",
    ),
    "module": tuple(name for name, _use in MODULES),
    "comment": _without(COMMENTS, "swap the two values", "nested loops over the grid", "no items left"),
    "default": ("None", "None", "None", "0", "1", "True", "False", "''", '""', "10", "[]", "()",
                "None", "-1", "0.5", "None"),
}

#: One split's half of every pool: ``SPLIT_POOLS[split][kind]``.
SPLIT_POOLS: dict[str, dict[str, tuple[Any, ...]]] = {
    s: {k: split_pool(v, s) for k, v in TASK_POOLS.items()} for s in SPLITS
}
