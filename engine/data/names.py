"""The identifier and value pools that generated Python is written with: variable, function,
class and attribute names, string contents, file names, comments.

Data only (one definition of each pool), plus :func:`split_pool`, the held-out halves of a pool.
The generated idioms (:mod:`engine.data.idioms`) draw from these pools as they are; the built-in
tasks (:mod:`engine.tasks.pools`) draw from them plus a few extra entries, each split in two.
The order of every pool is part of the data: a draw picks by position, so reordering a pool changes
every corpus and task pair generated from a seed.

Knows nothing about random draws, templates, tasks, tokenizers or models.
"""

from __future__ import annotations

from typing import Any

#: Short local variable names.
VARS = (
    "x", "y", "z", "a", "b", "c", "n", "m", "k", "s", "t", "v", "w", "total", "count", "result",
    "value", "key", "name", "data", "text", "size", "index", "left", "right", "low", "high",
    "first", "last", "current", "prev", "node", "item", "temp", "acc", "out", "buf", "best",
    "limit", "offset", "width", "height", "score", "level", "step", "flag", "done", "found",
    "length", "start", "end", "delta", "ratio", "price", "age", "mode", "line", "word", "label",
    "target", "number", "val", "num", "pos", "depth", "cost", "weight", "head", "tail", "root",
)

#: Collection / element name pairs, for ``for item in items:`` and friends.
PAIRS = (
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
ACCUMULATORS = (
    "seen", "result", "out", "acc", "names", "words", "chars", "visited", "keys", "tags", "text",
    "buf", "output", "parts", "collected", "found", "unique", "s", "x", "res", "line", "labels",
    "ids", "used", "items", "letters", "values", "done", "message", "msg", "prefix", "summary",
)

#: Function names.
FUNCS = (
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

#: Class names.
CLASSES = (
    "Node", "Point", "User", "Config", "Parser", "Item", "Record", "Task", "Account", "Vector",
    "Matrix", "Buffer", "Cache", "Server", "Client", "Event", "Job", "Token", "Reader", "Writer",
    "Counter", "Stack", "Queue", "Graph", "Edge", "Person", "Book", "Order", "Shape", "Circle",
    "Rectangle", "Animal", "Dog", "Car", "Player", "Game", "Board", "Cell", "Request", "Response",
    "Handler", "Logger", "Model", "Layer", "Tree", "Entry", "Message", "Session", "Window",
)

#: Attribute names, also used as ``__init__`` parameters.
ATTRS = (
    "name", "value", "size", "count", "parent", "children", "data", "path", "items", "left",
    "right", "x", "y", "z", "width", "height", "key", "label", "mode", "level", "color", "score",
    "start", "end", "text", "owner", "limit", "timeout", "title", "author", "price", "age",
    "email", "radius", "speed", "host", "port", "url", "status", "weight", "depth", "index",
    "kind", "tags", "balance", "capacity", "head", "tail", "rows", "cols", "created", "enabled",
)

#: Functions and methods that take a string, for ``obj.method("...")`` (``print`` twice: twice
#: as likely).
STRING_CALLS = (
    "print", "logger.info", "logger.debug", "logger.warning", "log.error", "self.log",
    "parser.add_argument", "os.path.join", "os.getenv", "out.write", "f.write", "sys.exit",
    "warnings.warn", "self.assertEqual", "re.compile", "json.dumps", "text.split", "name.startswith",
    "line.endswith", "path.endswith", "value.replace", "s.strip", "data.get", "config.get",
    "self.emit", "result.append", "names.append", "print_message", "ValueError", "KeyError",
    "TypeError", "RuntimeError", "Path", "open_file", "render", "send", "self.write", "print",
)

#: Single words, for string contents, dict keys and f-string text.
WORDS = (
    "hello", "world", "error", "done", "ok", "name", "value", "data", "file", "line", "user",
    "admin", "test", "debug", "info", "warning", "start", "stop", "ready", "missing", "found",
    "total", "count", "result", "input", "output", "config", "default", "empty", "none", "true",
    "false", "yes", "no", "red", "green", "blue", "apple", "banana", "cherry", "alpha", "beta",
    "gamma", "north", "south", "east", "west", "open", "close", "read", "write", "save", "load",
    "id", "key", "index", "size", "path", "host", "port", "status", "active", "pending",
    "failed", "success", "items", "text", "title", "label", "message", "server", "client",
    "foo", "bar", "baz", "spam", "eggs", "python", "code", "number", "string", "list", "item",
)

#: Short messages, for string contents.
SENTENCES = (
    "Could not open file", "Done", "Processing", "Invalid value", "Starting server",
    "Hello, world", "Something went wrong", "No items found", "Saving results", "Loading data",
    "Unknown option", "Connection closed", "All tests passed", "Missing argument",
    "Value must be positive", "Nothing to do", "Finished", "Reading input", "Bad request",
    "Press enter to continue", "Index out of range", "File not found", "Welcome back",
)

#: Flags, file names, paths, format strings and identifiers as string contents: the start of
#: every pool of symbolic string contents.
SYMBOLIC_BASE = (
    "utf-8", "--verbose", "--output", "-v", "user_id", "data.csv", "config.json", "a-b", "x.y",
    "%s: %s", "%d items", "/tmp", "data/raw", "http://localhost", "127.0.0.1", "v1.2",
    "snake_case", "UPPER", "__main__",
)

#: String contents that are not words: :data:`SYMBOLIC_BASE` plus separators, single punctuation
#: marks and numbers.
SYMBOLIC = SYMBOLIC_BASE + (
    ", ", ",", ":", "-", "=", "\\n", "|", "/", ".", " ",
    "*.py", "#", "[", "]", "(", ")", "key=value", "n/a", "%Y-%m-%d", "0", "1", "42", "3.14",
)

#: Contents with an apostrophe: only inside double quotes.
CONTRACTIONS_DQ = (
    "can't open it", "don't know", "it's done", "won't stop", "isn't valid", "that's all",
    "user's name", "what's next", "I'm here", "doesn't exist",
)

#: Contents with double quotes: only inside single quotes.
QUOTED_SQ = ('say "hi"', 'the "best" one', 'use "quotes"', 'a "b" c', 'key "x" missing')

#: File names that are read (opened with ``"r"`` or no mode).
READ_FILES = (
    "input.txt", "data.csv", "config.json", "source.py", "words.txt", "names.txt", "input.csv",
    "data.json", "settings.ini", "in.txt", "records.csv", "raw.txt", "input.json", "sample.txt",
    "data.txt", "input.log", "users.csv", "dictionary.txt",
)
#: File names that are written (opened with ``"w"`` or ``"a"``).
WRITE_FILES = (
    "output.txt", "results.csv", "report.txt", "out.txt", "output.json", "summary.md",
    "result.txt", "output.csv", "report.html", "results.json", "dump.txt", "out.csv",
    "output.log", "export.csv",
)
#: Path variable names that say "read".
READ_PATH_VARS = (
    "input_path", "in_path", "src_path", "source_path", "input_file", "config_path", "data_file",
    "infile_name", "input_name", "read_path",
)
#: Path variable names that say "write".
WRITE_PATH_VARS = (
    "output_path", "out_path", "dest_path", "report_path", "output_file", "result_file",
    "outfile_name", "output_name", "write_path",
)
#: File handle names for files read (``f`` twice: twice as likely).
READ_HANDLES = ("f", "f", "fh", "fp", "handle", "stream", "infile", "src", "file", "inp")
#: File handle names for files written.
WRITE_HANDLES = ("f", "f", "fh", "fp", "handle", "out", "outfile", "dst", "file", "sink")

#: Standard-library modules, each with a typical use.
MODULES = (
    ("os", "os.getcwd()"), ("sys", "sys.argv[1:]"), ("json", "json.loads(text)"),
    ("math", "math.sqrt(x)"), ("re", "re.compile(pattern)"), ("time", "time.time()"),
    ("random", "random.randint(1, 6)"), ("logging", "logging.getLogger(__name__)"),
    ("collections", "collections.Counter(words)"), ("itertools", "itertools.chain(a, b)"),
    ("pathlib", "pathlib.Path(path)"), ("string", "string.ascii_letters"),
    ("functools", "functools.partial(f, 1)"), ("shutil", "shutil.copy(src, dst)"),
)

#: Comment texts.
COMMENTS = (
    "check the input", "build the result", "update the counters", "read the whole file",
    "skip empty lines", "remember what we have seen", "keep the best one so far",
    "default values", "collect the output", "swap the two values", "loop until done",
    "handle the edge case", "make a copy", "helper for the tests", "nested loops over the grid",
    "this is slow but simple", "write everything out", "parse the header", "fall back to zero",
    "compute the total", "normalize the name", "no items left", "walk the tree",
)


def split_pool(pool: tuple[Any, ...], split: str) -> tuple[Any, ...]:
    """One half of ``pool``: the even positions for ``split == "train"``, the odd ones otherwise.

    The two halves share no position, so held-out ("val") draws use names that training draws never
    see (unless a name occurs twice in the pool).
    """
    return pool[0::2] if split == "train" else pool[1::2]
