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

Knows nothing about tokenizers, models or torch.
"""

from __future__ import annotations

import random
from typing import Callable

__all__ = ["TEMPLATE_NAMES", "generate_snippet", "generate_snippets"]

# --------------------------------------------------------------------------------------------
# Name pools
# --------------------------------------------------------------------------------------------

#: Short local variable names.
_VARS = (
    "x", "y", "z", "a", "b", "c", "n", "m", "k", "s", "t", "v", "w", "total", "count", "result",
    "value", "key", "name", "data", "text", "size", "index", "left", "right", "low", "high",
    "first", "last", "current", "prev", "node", "item", "temp", "acc", "out", "buf", "best",
    "limit", "offset", "width", "height", "score", "level", "step", "flag", "done", "found",
    "length", "start", "end", "delta", "ratio", "price", "age", "mode", "line", "word", "label",
    "target", "number", "val", "num", "pos", "depth", "cost", "weight", "head", "tail", "root",
)

#: Collection / element name pairs, for ``for item in items:`` and friends.
_PAIRS = (
    ("items", "item"), ("names", "name"), ("words", "word"), ("lines", "line"), ("users", "user"),
    ("rows", "row"), ("values", "value"), ("nodes", "node"), ("keys", "key"), ("paths", "path"),
    ("records", "record"), ("tokens", "token"), ("tasks", "task"), ("entries", "entry"),
    ("children", "child"), ("points", "point"), ("scores", "score"), ("parts", "part"),
    ("args", "arg"), ("numbers", "number"), ("files", "filename"), ("results", "result"),
    ("events", "event"), ("jobs", "job"), ("cells", "cell"), ("chars", "ch"), ("nums", "num"),
    ("xs", "x"), ("ys", "y"), ("elements", "elem"), ("pairs", "pair"), ("fields", "field"),
    ("columns", "column"), ("messages", "message"), ("urls", "url"), ("lists", "lst"),
    ("options", "option"), ("edges", "edge"), ("samples", "sample"), ("blocks", "block"),
    ("params", "param"), ("people", "person"), ("books", "book"), ("orders", "order"),
    ("colors", "color"), ("items_list", "entry"), ("data", "d"), ("queue", "job"),
)

#: Names used both for ``x = set()`` and for ``x = ""``, so the name alone never tells which.
_ACCUMULATORS = (
    "seen", "result", "out", "acc", "names", "words", "chars", "visited", "keys", "tags", "text",
    "buf", "output", "parts", "collected", "found", "unique", "s", "x", "res", "line", "labels",
    "ids", "used", "items", "letters", "values", "done", "message", "msg", "prefix", "summary",
)

_FUNCS = (
    "process", "load_config", "parse_line", "compute", "build_index", "main", "handle", "update",
    "render", "get_value", "make_key", "run", "check", "read_data", "write_report", "format_name",
    "to_string", "merge", "split_words", "count_words", "find_item", "normalize", "validate",
    "apply", "transform", "clean", "fetch", "send", "save", "load", "parse", "encode", "decode",
    "convert", "resolve", "collect", "filter_items", "sort_items", "get_name", "set_value",
    "add_item", "remove_item", "is_valid", "has_key", "area", "distance", "total_price",
    "average", "greet", "tokenize", "flatten", "chunk", "search", "visit", "walk", "summarize",
    "format_row", "make_table", "parse_args", "setup", "cleanup", "helper", "callback", "square",
    "double", "increment", "scale", "score", "lookup", "register", "emit", "dispatch",
)

_CLASSES = (
    "Node", "Point", "User", "Config", "Parser", "Item", "Record", "Task", "Account", "Vector",
    "Matrix", "Buffer", "Cache", "Server", "Client", "Event", "Job", "Token", "Reader", "Writer",
    "Counter", "Stack", "Queue", "Graph", "Edge", "Person", "Book", "Order", "Shape", "Circle",
    "Rectangle", "Animal", "Dog", "Car", "Player", "Game", "Board", "Cell", "Request", "Response",
    "Handler", "Logger", "Model", "Layer", "Tree", "Entry", "Message", "Session", "Window",
)

_ATTRS = (
    "name", "value", "size", "count", "parent", "children", "data", "path", "items", "left",
    "right", "x", "y", "z", "width", "height", "key", "label", "mode", "level", "color", "score",
    "start", "end", "text", "owner", "limit", "timeout", "title", "author", "price", "age",
    "email", "radius", "speed", "host", "port", "url", "status", "weight", "depth", "index",
    "kind", "tags", "balance", "capacity", "head", "tail", "rows", "cols", "created", "enabled",
)

#: Objects with a method that takes a string, for ``obj.method("...")``.
_STRING_CALLS = (
    "print", "logger.info", "logger.debug", "logger.warning", "log.error", "self.log",
    "parser.add_argument", "os.path.join", "os.getenv", "out.write", "f.write", "sys.exit",
    "warnings.warn", "self.assertEqual", "re.compile", "json.dumps", "text.split", "name.startswith",
    "line.endswith", "path.endswith", "value.replace", "s.strip", "data.get", "config.get",
    "self.emit", "result.append", "names.append", "print_message", "ValueError", "KeyError",
    "TypeError", "RuntimeError", "Path", "open_file", "render", "send", "self.write", "print",
)

_WORDS = (
    "hello", "world", "error", "done", "ok", "name", "value", "data", "file", "line", "user",
    "admin", "test", "debug", "info", "warning", "start", "stop", "ready", "missing", "found",
    "total", "count", "result", "input", "output", "config", "default", "empty", "none", "true",
    "false", "yes", "no", "red", "green", "blue", "apple", "banana", "cherry", "alpha", "beta",
    "gamma", "north", "south", "east", "west", "open", "close", "read", "write", "save", "load",
    "id", "key", "index", "size", "path", "host", "port", "status", "active", "pending",
    "failed", "success", "items", "text", "title", "label", "message", "server", "client",
    "foo", "bar", "baz", "spam", "eggs", "python", "code", "number", "string", "list", "item",
)

_SENTENCES = (
    "Could not open file", "Done", "Processing", "Invalid value", "Starting server",
    "Hello, world", "Something went wrong", "No items found", "Saving results", "Loading data",
    "Unknown option", "Connection closed", "All tests passed", "Missing argument",
    "Value must be positive", "Nothing to do", "Finished", "Reading input", "Bad request",
    "Press enter to continue", "Index out of range", "File not found", "Welcome back",
)

_SYMBOLIC = (
    "utf-8", "--verbose", "--output", "-v", "user_id", "data.csv", "config.json", "a-b", "x.y",
    "%s: %s", "%d items", "/tmp", "data/raw", "http://localhost", "127.0.0.1", "v1.2",
    "snake_case", "UPPER", "__main__", ", ", ",", ":", "-", "=", "\\n", "|", "/", ".", " ",
    "*.py", "#", "[", "]", "(", ")", "key=value", "n/a", "%Y-%m-%d", "0", "1", "42", "3.14",
)

_CONTRACTIONS_DQ = (
    "can't open it", "don't know", "it's done", "won't stop", "isn't valid", "that's all",
    "user's name", "what's next", "I'm here", "doesn't exist",
)

_QUOTED_SQ = ('say "hi"', 'the "best" one', 'use "quotes"', 'a "b" c', 'key "x" missing')

_READ_FILES = (
    "input.txt", "data.csv", "config.json", "source.py", "words.txt", "names.txt", "input.csv",
    "data.json", "settings.ini", "in.txt", "records.csv", "raw.txt", "input.json", "sample.txt",
    "data.txt", "input.log", "users.csv", "dictionary.txt",
)
_WRITE_FILES = (
    "output.txt", "results.csv", "report.txt", "out.txt", "output.json", "summary.md",
    "result.txt", "output.csv", "report.html", "results.json", "dump.txt", "out.csv",
    "output.log", "export.csv",
)
_READ_PATH_VARS = (
    "input_path", "in_path", "src_path", "source_path", "input_file", "config_path", "data_file",
    "infile_name", "input_name", "read_path",
)
_WRITE_PATH_VARS = (
    "output_path", "out_path", "dest_path", "report_path", "output_file", "result_file",
    "outfile_name", "output_name", "write_path",
)
_READ_HANDLES = ("f", "f", "fh", "fp", "handle", "stream", "infile", "src", "file", "inp")
_WRITE_HANDLES = ("f", "f", "fh", "fp", "handle", "out", "outfile", "dst", "file", "sink")

_MODULES = (
    ("os", "os.getcwd()"), ("sys", "sys.argv[1:]"), ("json", "json.loads(text)"),
    ("math", "math.sqrt(x)"), ("re", "re.compile(pattern)"), ("time", "time.time()"),
    ("random", "random.randint(1, 6)"), ("logging", "logging.getLogger(__name__)"),
    ("collections", "collections.Counter(words)"), ("itertools", "itertools.chain(a, b)"),
    ("pathlib", "pathlib.Path(path)"), ("string", "string.ascii_letters"),
    ("functools", "functools.partial(f, 1)"), ("shutil", "shutil.copy(src, dst)"),
)

_COMMENTS = (
    "check the input", "build the result", "update the counters", "read the whole file",
    "skip empty lines", "remember what we have seen", "keep the best one so far",
    "default values", "collect the output", "swap the two values", "loop until done",
    "handle the edge case", "make a copy", "helper for the tests", "nested loops over the grid",
    "this is slow but simple", "write everything out", "parse the header", "fall back to zero",
    "compute the total", "normalize the name", "no items left", "walk the tree",
)


# --------------------------------------------------------------------------------------------
# The random context a template draws from
# --------------------------------------------------------------------------------------------


class _Draw:
    """Random choices for one snippet, all from one ``random.Random``."""

    __slots__ = ("rng", "choice", "random", "randint")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.choice = rng.choice
        self.random = rng.random
        self.randint = rng.randint

    # -- identifiers ----------------------------------------------------------------------
    def var(self) -> str:
        return self.choice(_VARS)

    def vars(self, k: int) -> list[str]:
        return self.rng.sample(_VARS, k)

    def pair(self) -> tuple[str, str]:
        return self.choice(_PAIRS)

    def func(self) -> str:
        return self.choice(_FUNCS)

    def cls(self) -> str:
        return self.choice(_CLASSES)

    def attrs(self, k: int) -> list[str]:
        return self.rng.sample(_ATTRS, k)

    # -- literals -------------------------------------------------------------------------
    def quote(self) -> str:
        return '"' if self.random() < 0.55 else "'"

    def text(self, q: str) -> str:
        """Contents for a string literal quoted with ``q`` (never contains ``q``)."""
        r = self.random()
        if r < 0.34:
            return self.choice(_WORDS)
        if r < 0.56:
            return " ".join(self.rng.sample(_WORDS, self.randint(2, 4)))
        if r < 0.72:
            return self.choice(_SENTENCES) + self.choice(("", "", ".", "!", "...", ":", "?"))
        if r < 0.90:
            return self.choice(_SYMBOLIC)
        if r < 0.95:
            return self.choice(_CONTRACTIONS_DQ if q == '"' else _QUOTED_SQ)
        if r < 0.98:
            return self.choice(_WORDS).capitalize()
        return ""

    def string(self, q: str | None = None) -> str:
        """A complete string literal."""
        if q is None:
            q = self.quote()
        return q + self.text(q) + q

    def num(self) -> str:
        r = self.random()
        if r < 0.6:
            return str(self.randint(0, 10))
        if r < 0.8:
            return str(self.randint(11, 100))
        if r < 0.9:
            return self.choice(("255", "1000", "1024", "3600", "65536", "-1", "2048"))
        return self.choice(("0.5", "1.0", "3.14", "0.1", "2.5", "1e-3", "0.0", "100.0"))

    def atom(self) -> str:
        """A simple value: a number, a name or a string."""
        r = self.random()
        if r < 0.45:
            return self.num()
        if r < 0.75:
            return self.var()
        if r < 0.9:
            return self.string()
        return self.choice(("None", "True", "False", "[]", "{}", "()", "0"))

    def operand(self) -> str:
        """Something to compare against: a number, a name, a string or None."""
        r = self.random()
        if r < 0.4:
            return self.num()
        if r < 0.7:
            return self.var()
        if r < 0.9:
            return self.string()
        return "None"

    # -- expressions and statements ---------------------------------------------------------
    def expr(self, v: str) -> str:
        """An expression that uses ``v``."""
        c = self.choice
        r = self.randint(0, 13)
        if r == 0:
            return f"{v} + {self.num()}"
        if r == 1:
            return f"{v} * {self.num()}"
        if r == 2:
            return f"len({v})"
        if r == 3:
            return f"{self.func()}({v})"
        if r == 4:
            return f"{v}.{c(_ATTRS)}"
        if r == 5:
            return f"{v}[{self.randint(0, 3)}]"
        if r == 6:
            return f"{c(('str', 'int', 'float', 'abs', 'sorted', 'list', 'max', 'min'))}({v})"
        if r == 7:
            return f"{v} - {self.var()}"
        if r == 8:
            return f"{v} // {self.randint(2, 10)}"
        if r == 9:
            return f"{v}.{c(('strip', 'lower', 'upper', 'copy', 'pop', 'keys', 'split'))}()"
        if r == 10:
            return f"{v} % {self.randint(2, 10)}"
        if r == 11:
            return f"{self.func()}({v}, {self.atom()})"
        if r == 12:
            return f"{v} ** 2"
        return v

    def cond(self, v: str) -> str:
        """A boolean condition about ``v``."""
        r = self.randint(0, 14)
        if r == 0:
            return f"{v} > {self.num()}"
        if r == 1:
            return f"{v} is None"
        if r == 2:
            return f"not {v}"
        if r == 3:
            return f"{v} in {self.pair()[0]}"
        if r == 4:
            return f"len({v}) > {self.randint(0, 10)}"
        if r == 5:
            return f"{v} % 2 == 0"
        if r == 6:
            return f"{v}.startswith({self.string()})"
        if r == 7:
            return f"{v} == {self.operand()}"
        if r == 8:
            return f"{v} < {self.var()}"
        if r == 9:
            return f"{v} is not None"
        if r == 10:
            return f"{v} != {self.operand()}"
        if r == 11:
            return f"isinstance({v}, {self.choice(('int', 'str', 'list', 'dict', 'float', 'tuple'))})"
        if r == 12:
            return f"{v} >= {self.num()} and {v} <= {self.num()}"
        if r == 13:
            return f"{self.func()}({v})"
        return v

    def stmt(self, v: str) -> str:
        """A one-line statement that mentions ``v`` (valid anywhere in a block)."""
        r = self.randint(0, 11)
        if r == 0:
            return f"{self.var()} = {self.expr(v)}"
        if r == 1:
            return f"print({v})"
        if r == 2:
            return f"{self.pair()[0]}.append({v})"
        if r == 3:
            return f"{self.var()} += {self.choice(('1', v, self.num()))}"
        if r == 4:
            return f"{self.func()}({v})"
        if r == 5:
            return f"{self.choice(('logger', 'log'))}.{self.choice(('debug', 'info'))}({self.string()}, {v})"
        if r == 6:
            return f"{v} = {self.expr(v)}"
        if r == 7:
            return f"count += 1"
        if r == 8:
            return f"print({self.string()}, {v})"
        if r == 9:
            return f"self.{self.choice(_ATTRS)} = {v}"
        if r == 10:
            return f"{self.var()}[{v}] = {self.atom()}"
        return f"total += {v}"

    def fstring(self, q: str | None = None) -> str:
        """An f-string literal with one or two ``{...}`` fields (never nested quotes)."""
        if q is None:
            q = self.quote()
        fields = (
            self.var(),
            self.var(),
            f"{self.var()}.{self.choice(_ATTRS)}",
            f"len({self.pair()[0]})",
            f"{self.var()}:.2f",
            f"self.{self.choice(_ATTRS)}",
            f"{self.var()}!r",
            f"{self.var()} + 1",
            f"{self.var()}[0]",
        )
        a = "{" + self.choice(fields) + "}"
        r = self.randint(0, 9)
        if r == 0:
            return f"f{q}{a}{q}"
        if r == 1:
            return f"f{q}{self.choice(_WORDS)}: {a}{q}"
        if r == 2:
            return f"f{q}{a} {self.choice(_WORDS)}{q}"
        if r == 3:
            b = "{" + self.choice(fields) + "}"
            return f"f{q}{a}: {b}{q}"
        if r == 4:
            return f"f{q}{self.choice(_SENTENCES)}: {a}{q}"
        if r == 5:
            return f"f{q}{self.choice(_SENTENCES)} {a}{self.choice(('.', '!', ''))}{q}"
        if r == 6:
            b = "{" + self.choice(fields) + "}"
            return f"f{q}{a}/{b}{q}"
        if r == 7:
            return f"f{q}{self.choice(_WORDS)}={a}{q}"
        if r == 8:
            return f"f{q}({a}){q}"
        return f"f{q}{self.choice(_WORDS).capitalize()} {a}, {self.choice(_WORDS)}{q}"

    def comment(self) -> str:
        r = self.random()
        text = self.choice(_COMMENTS)
        if r < 0.1:
            return f"# TODO: {text}"
        if r < 0.15:
            return f"# NOTE: {text}"
        if r < 0.6:
            return f"# {text.capitalize()}"
        return f"# {text}"

    def docstring(self) -> str:
        q3 = '"""' if self.random() < 0.85 else "'''"
        verb = self.choice(("Return", "Compute", "Build", "Read", "Write", "Check", "Parse",
                            "Update", "Load", "Collect", "Find", "Make"))
        noun = " ".join(self.rng.sample(_WORDS, self.randint(1, 3)))
        return f"{q3}{verb} the {noun}.{q3}"


def _indent(lines: list[str], levels: int = 1) -> list[str]:
    pad = "    " * levels
    return [pad + line if line else line for line in lines]


def _int_list(d: _Draw, lo: int = 1, hi: int = 4) -> str:
    return ", ".join(d.num() if d.random() < 0.85 else d.var() for _ in range(d.randint(lo, hi)))


# --------------------------------------------------------------------------------------------
# Templates. Each returns the lines of one snippet, indented relative to column 0.
# --------------------------------------------------------------------------------------------

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
        fn = d.choice(_STRING_CALLS)
        r = d.random()
        if fn == "parser.add_argument":
            q = d.quote()
            flag = d.choice(_WORDS)
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
    keys = d.rng.sample(_WORDS, d.randint(1, 4))
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
    keys = d.rng.sample(_WORDS, d.randint(1, 3))
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
    word = d.choice(_WORDS)
    lines = [f"{d.var()} = {q}{word} {d.choice(_WORDS)}{q}", f"{d.var()} = f{q}{word} {{{v}}}{q}"]
    if d.random() < 0.5:
        lines.reverse()
    if d.random() < 0.4:
        lines.append(f"print({q}{d.choice(_SENTENCES)}{q} + str({v}))")
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
    keys = d.rng.sample(_WORDS, d.randint(1, 3))
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
    acc = d.choice(_ACCUMULATORS)
    lines = [f"{acc} = set()"]
    if d.random() < 0.25:
        lines.append(d.stmt(d.var()))
    arg = d.choice(("{el}", "{el}", "{el}", "{el}.lower()", "str({el})", "{el}.name", "{el}[0]"))
    lines += _accumulate_loop(d, acc, f"{acc}.add({arg})")
    if d.random() < 0.25:
        lines.append(f"return {acc}" if d.random() < 0.5 else f"print(len({acc}))")
    return lines


def _t_string_concat(d: _Draw) -> list[str]:
    acc = d.choice(_ACCUMULATORS)
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
        return [f"{coll}.sort(key=lambda {x}: {x}.{d.choice(_ATTRS)})"]
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
        return q + d.choice(_WRITE_FILES if write else _READ_FILES) + q
    return d.choice(_WRITE_PATH_VARS if write else _READ_PATH_VARS)


def _t_with_open_read(d: _Draw) -> list[str]:
    q = d.quote()
    target = _file_target(d, write=False)
    h = d.choice(_READ_HANDLES)
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
    h = d.choice(_WRITE_HANDLES)
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
    h = d.choice(_WRITE_HANDLES if write else _READ_HANDLES)
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
    src = q + d.choice(_READ_FILES) + q
    dst = q + d.choice(_WRITE_FILES) + q
    v = d.choice(("data", "text", "lines", "content", "rows"))
    return [f"with open({src}, {q}r{q}) as f:", f"    {v} = f.read()",
            f"with open({dst}, {q}w{q}) as f:", f"    f.write({v})"]


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
    words = d.rng.sample(_WORDS, d.randint(2, 3))
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
    mod, use = d.choice(_MODULES)
    lines = [f"import {mod}"]
    if d.random() < 0.3:
        other = d.choice(_MODULES)[0]
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
        return [f"import {d.choice(_MODULES)[0]}"]
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
        body = _indent(lines)
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
