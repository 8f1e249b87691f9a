"""Random draws for the built-in tasks: identifier / value pools, each split in two (even positions
train, odd positions val), and :class:`_Gen`, which composes one pair from them."""

from __future__ import annotations

import random
from typing import Any, Callable, Optional

from engine.tasks.types import MAX_PROMPT_CHARS, SPLITS, TaskPair

# --------------------------------------------------------------------------------------------
# Pools (each split in two: even positions train, odd positions val)
# --------------------------------------------------------------------------------------------

_POOLS: dict[str, tuple[Any, ...]] = {
    "var": (
        "x", "y", "z", "a", "b", "c", "n", "m", "k", "s", "t", "v", "w", "total", "count",
        "result", "value", "key", "name", "data", "text", "size", "index", "left", "right", "low",
        "high", "first", "last", "current", "prev", "node", "item", "temp", "acc", "out", "buf",
        "best", "limit", "offset", "width", "height", "score", "level", "step", "flag", "done",
        "found", "length", "start", "end", "delta", "ratio", "price", "age", "mode", "line",
        "word", "label", "target", "number", "val", "num", "pos", "depth", "cost", "weight",
        "head", "tail", "root", "p", "q", "r", "u", "d", "f", "g", "h", "j", "big", "small",
    ),
    "pair": (
        ("items", "item"), ("names", "name"), ("words", "word"), ("lines", "line"),
        ("users", "user"), ("rows", "row"), ("values", "value"), ("nodes", "node"),
        ("keys", "key"), ("paths", "path"), ("records", "record"), ("tokens", "token"),
        ("tasks", "task"), ("entries", "entry"), ("children", "child"), ("points", "point"),
        ("scores", "score"), ("parts", "part"), ("args", "arg"), ("numbers", "number"),
        ("files", "filename"), ("results", "result"), ("events", "event"), ("jobs", "job"),
        ("cells", "cell"), ("chars", "ch"), ("nums", "num"), ("xs", "x"), ("ys", "y"),
        ("elements", "elem"), ("pairs", "pair"), ("fields", "field"), ("columns", "column"),
        ("messages", "message"), ("urls", "url"), ("lists", "lst"), ("options", "option"),
        ("edges", "edge"), ("samples", "sample"), ("blocks", "block"), ("params", "param"),
        ("people", "person"), ("books", "book"), ("orders", "order"), ("colors", "color"),
        ("items_list", "entry"), ("data", "d"), ("queue", "job"), ("students", "student"),
        ("cities", "city"), ("animals", "animal"), ("letters", "letter"),
    ),
    "acc": (
        "seen", "result", "out", "acc", "names", "words", "chars", "visited", "keys", "tags",
        "text", "buf", "output", "parts", "collected", "found", "unique", "s", "x", "res", "line",
        "labels", "ids", "used", "items", "letters", "values", "done", "message", "msg", "prefix",
        "summary", "codes", "marks", "tokens", "pieces",
    ),
    "func": (
        "process", "load_config", "parse_line", "compute", "build_index", "main", "handle",
        "update", "render", "get_value", "make_key", "run", "check", "read_data", "write_report",
        "format_name", "to_string", "merge", "split_words", "count_words", "find_item",
        "normalize", "validate", "apply", "transform", "clean", "fetch", "send", "save", "load",
        "parse", "encode", "decode", "convert", "resolve", "collect", "filter_items",
        "sort_items", "get_name", "set_value", "add_item", "remove_item", "is_valid", "has_key",
        "area", "distance", "total_price", "average", "greet", "tokenize", "flatten", "chunk",
        "search", "visit", "walk", "summarize", "format_row", "make_table", "parse_args", "setup",
        "cleanup", "helper", "callback", "square", "double", "increment", "scale", "lookup",
        "register", "emit", "dispatch", "key_func",
    ),
    "cls": (
        "Node", "Point", "User", "Config", "Parser", "Item", "Record", "Task", "Account",
        "Vector", "Matrix", "Buffer", "Cache", "Server", "Client", "Event", "Job", "Token",
        "Reader", "Writer", "Counter", "Stack", "Queue", "Graph", "Edge", "Person", "Book",
        "Order", "Shape", "Circle", "Rectangle", "Animal", "Dog", "Car", "Player", "Game",
        "Board", "Cell", "Request", "Response", "Handler", "Logger", "Model", "Layer", "Tree",
        "Entry", "Message", "Session", "Window", "Student",
    ),
    "attr": (
        "name", "value", "size", "count", "parent", "children", "data", "path", "items", "left",
        "right", "x", "y", "z", "width", "height", "key", "label", "mode", "level", "color",
        "score", "start", "end", "text", "owner", "limit", "timeout", "title", "author", "price",
        "age", "email", "radius", "speed", "host", "port", "url", "status", "weight", "depth",
        "index", "kind", "tags", "balance", "capacity", "head", "tail", "rows", "cols", "created",
        "enabled", "verbose", "message",
    ),
    "word": (
        "hello", "world", "error", "done", "ok", "name", "value", "data", "file", "line", "user",
        "admin", "test", "debug", "info", "warning", "start", "stop", "ready", "missing",
        "found", "total", "count", "result", "input", "output", "config", "default", "empty",
        "none", "true", "false", "yes", "no", "red", "green", "blue", "apple", "banana",
        "cherry", "alpha", "beta", "gamma", "north", "south", "east", "west", "open", "close",
        "read", "write", "save", "load", "id", "key", "index", "size", "path", "host", "port",
        "status", "active", "pending", "failed", "success", "items", "text", "title", "label",
        "message", "server", "client", "foo", "bar", "baz", "spam", "eggs", "python", "code",
        "number", "string", "list", "item", "score", "price",
    ),
    "sentence": (
        "Could not open file", "Done", "Processing", "Invalid value", "Starting server",
        "Hello, world", "Something went wrong", "No items found", "Saving results",
        "Loading data", "Unknown option", "Connection closed", "All tests passed",
        "Missing argument", "Value must be positive", "Nothing to do", "Finished",
        "Reading input", "Bad request", "Press enter to continue", "Index out of range",
        "File not found", "Welcome back", "Total", "Result", "Score", "Count", "Name",
        "Average", "Elapsed time", "Current value", "Number of items",
    ),
    "symbolic": (
        "utf-8", "--verbose", "--output", "-v", "user_id", "data.csv", "config.json", "a-b",
        "x.y", "%s: %s", "%d items", "/tmp", "data/raw", "http://localhost", "127.0.0.1", "v1.2",
        "snake_case", "UPPER", "__main__", "key=value", "n/a", "%Y-%m-%d", "42", "3.14", "*.py",
        "--help", "#", "-",
    ),
    "read_file": (
        "input.txt", "data.csv", "config.json", "source.py", "words.txt", "names.txt",
        "input.csv", "data.json", "settings.ini", "in.txt", "records.csv", "raw.txt",
        "input.json", "sample.txt", "data.txt", "input.log", "users.csv", "dictionary.txt",
    ),
    "write_file": (
        "output.txt", "results.csv", "report.txt", "out.txt", "output.json", "summary.md",
        "result.txt", "output.csv", "report.html", "results.json", "dump.txt", "out.csv",
        "output.log", "export.csv", "report.csv", "results.txt",
    ),
    "read_path": (
        "input_path", "in_path", "src_path", "source_path", "input_file", "config_path",
        "data_file", "infile_name", "input_name", "read_path",
    ),
    "write_path": (
        "output_path", "out_path", "dest_path", "report_path", "output_file", "result_file",
        "outfile_name", "output_name", "write_path", "save_path",
    ),
    "handle": ("f", "fh", "fp", "handle", "stream", "file", "infile", "out", "src", "dst"),
    "dir": ("base_dir", "root", "folder", "data_dir", "out_dir", "directory", "path", "home"),
    "index": ("i", "j", "k", "lo", "hi", "a", "b", "left", "right", "n", "m", "idx", "pos", "p"),
    "loopvar": ("i", "j", "k", "n", "idx", "pos", "index", "step", "row", "col", "r", "c"),
    "call": (
        "print", "logger.info", "logger.debug", "logger.warning", "log.error", "self.log",
        "os.getenv", "out.write", "f.write", "sys.exit", "warnings.warn", "re.compile",
        "json.dumps", "data.get", "config.get", "self.emit", "result.append", "names.append",
        "ValueError", "KeyError", "RuntimeError", "Path", "render", "send",
    ),
    "module": ("os", "sys", "json", "math", "re", "time", "random", "logging", "collections",
               "itertools", "pathlib", "string", "functools", "shutil"),
    "comment": (
        "check the input", "build the result", "update the counters", "read the whole file",
        "skip empty lines", "remember what we have seen", "keep the best one so far",
        "default values", "collect the output", "loop until done", "handle the edge case",
        "make a copy", "helper for the tests", "this is slow but simple", "write everything out",
        "parse the header", "fall back to zero", "compute the total", "normalize the name",
        "walk the tree",
    ),
    "default": ("None", "None", "None", "0", "1", "True", "False", "''", '""', "10", "[]", "()",
                "None", "-1", "0.5", "None"),
}


def _split_pool(pool: tuple[Any, ...], split: str) -> tuple[Any, ...]:
    return pool[0::2] if split == "train" else pool[1::2]


_SPLIT_POOLS: dict[str, dict[str, tuple[Any, ...]]] = {
    s: {k: _split_pool(v, s) for k, v in _POOLS.items()} for s in SPLITS
}


def _indent(lines: list[str], levels: int = 1) -> list[str]:
    pad = "    " * levels
    return [pad + ln if ln else ln for ln in lines]


class _Gen:
    """Random choices for one pair, from one ``random.Random`` and one split's pools."""

    def __init__(self, rng: random.Random, split: str) -> None:
        self.rng = rng
        self.pools = _SPLIT_POOLS[split]

    # -- draws ------------------------------------------------------------------------------
    def pick(self, pool: str) -> Any:
        return self.rng.choice(self.pools[pool])

    def sample(self, pool: str, k: int) -> list[Any]:
        return self.rng.sample(self.pools[pool], k)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def var(self) -> str:
        return self.pick("var")

    def pair(self) -> tuple[str, str]:
        return self.pick("pair")

    def func(self) -> str:
        return self.pick("func")

    def quote(self) -> str:
        return '"' if self.rng.random() < 0.55 else "'"

    def num(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return str(self.rng.randint(0, 10))
        if r < 0.85:
            return str(self.rng.randint(11, 100))
        return self.rng.choice(("255", "1000", "1024", "-1", "0.5", "1.0", "3.14", "2.5"))

    def nums(self, lo: int = 1, hi: int = 4) -> str:
        return ", ".join(self.num() if self.chance(0.85) else self.var()
                         for _ in range(self.rng.randint(lo, hi)))

    def text(self) -> str:
        """Contents of a string literal: never a quote or backslash."""
        r = self.rng.random()
        if r < 0.4:
            return self.pick("word")
        if r < 0.62:
            return " ".join(self.sample("word", self.rng.randint(2, 3)))
        if r < 0.85:
            return self.pick("sentence") + self.rng.choice(("", "", "", ".", "!", ":"))
        return self.pick("symbolic")

    def string(self) -> str:
        q = self.quote()
        return q + self.pick("word") + q

    def atom(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.num()
        if r < 0.7:
            return self.var()
        if r < 0.88:
            return self.string()
        return self.rng.choice(("None", "True", "False", "[]", "0"))

    def expr(self, v: str) -> str:
        k = self.rng.randint(0, 7)
        if k == 0:
            return f"{v} + {self.num()}"
        if k == 1:
            return f"len({v})"
        if k == 2:
            return f"{self.func()}({v})"
        if k == 3:
            return f"{v}.{self.pick('attr')}"
        if k == 4:
            return f"{v}[{self.rng.randint(0, 3)}]"
        if k == 5:
            return f"{self.rng.choice(('str', 'int', 'abs', 'sorted', 'max'))}({v})"
        if k == 6:
            return f"{v} * {self.num()}"
        return v

    def cond(self, v: str) -> str:
        """A condition about ``v``; never ends with a space."""
        k = self.rng.randint(0, 11)
        if k == 0:
            return f"{v} > {self.num()}"
        if k == 1:
            return f"{v} is None"
        if k == 2:
            return f"not {v}"
        if k == 3:
            return f"{v} in {self.pair()[0]}"
        if k == 4:
            return f"len({v}) > {self.rng.randint(0, 10)}"
        if k == 5:
            return f"{v} % 2 == 0"
        if k == 6:
            return f"{v} == {self.atom()}"
        if k == 7:
            return f"{v} < {self.var()}"
        if k == 8:
            return f"{v} is not None"
        if k == 9:
            return f"isinstance({v}, {self.rng.choice(('int', 'str', 'list', 'dict'))})"
        if k == 10:
            return f"{self.func()}({v})"
        return v

    def stmt(self, v: str) -> str:
        k = self.rng.randint(0, 6)
        if k == 0:
            return f"{self.var()} = {self.expr(v)}"
        if k == 1:
            return f"print({v})"
        if k == 2:
            return f"{self.pair()[0]}.append({v})"
        if k == 3:
            return "count += 1"
        if k == 4:
            return f"{self.func()}({v})"
        if k == 5:
            return f"total += {v}"
        return f"{v} = {self.expr(v)}"

    def distinct_first(self, pool: str, k: int = 2) -> list[str]:
        """``k`` names from ``pool`` with pairwise different first characters."""
        while True:
            names = self.sample(pool, k)
            if len({n[0] for n in names}) == k:
                return names

    # -- surroundings -------------------------------------------------------------------------
    def pre(self) -> list[str]:
        """0-2 lines of unrelated code before the idiom (shared by both prompts)."""
        if self.rng.random() < 0.4:
            return []
        k = self.rng.randint(0, 7)
        v = self.var()
        if k == 0:
            line = f"{v} = {self.num()}"
        elif k == 1:
            line = f"{self.pair()[0]} = []"
        elif k == 2:
            line = f"{v} = {self.func()}({self.var()})"
        elif k == 3:
            line = f"print({v})"
        elif k == 4:
            line = "# " + self.pick("comment")
        elif k == 5:
            line = f"import {self.pick('module')}"
        elif k == 6:
            line = f"{v} = {self.string()}"
        else:
            line = f"{self.func()}()"
        return [line, ""] if self.rng.random() < 0.15 else [line]

    def header(self) -> str:
        params = ", ".join(self.sample("var", self.rng.randint(0, 2)))
        return f"def {self.func()}({params}):"

    def make(self, a: list[str], ta: str, b: list[str], tb: str, *, pre: bool = True,
             wrap: float = 0.25) -> Optional[TaskPair]:
        """A pair from the idiom lines of each side (the last line is the unfinished one).

        Adds shared surroundings (an unrelated line before; with probability ``wrap`` an enclosing
        ``def``); drops them if a prompt would exceed :data:`MAX_PROMPT_CHARS`. None if still too
        long.
        """
        ctx = self.pre() if pre else []
        head = self.header() if self.rng.random() < wrap else None
        attempts = [(ctx, head), ([], head)]
        if wrap < 1.0:
            attempts.append(([], None))  # a forced wrapper (wrap=1.0) is never dropped
        for c, h in attempts:
            la, lb = c + a, c + b
            if h is not None:
                la, lb = [h] + _indent(la), [h] + _indent(lb)
            pa, pb = "\n".join(la), "\n".join(lb)
            if len(pa) <= MAX_PROMPT_CHARS and len(pb) <= MAX_PROMPT_CHARS:
                return TaskPair(pa, ta, pb, tb)
        return None


#: One template variant: draws a pair (or None when it came out too long).
_Variant = Callable[[_Gen], Optional[TaskPair]]
