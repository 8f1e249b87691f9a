"""Tests for the generated simple-idiom snippets (engine.data.idioms)."""

from __future__ import annotations

import ast
import random
import re
import time

import pytest

from engine.data import idioms, names


@pytest.fixture(scope="module")
def corpus() -> str:
    return idioms.generate_snippets(seed=123, n_chars=200_000)


def test_deterministic_per_seed_and_different_across_seeds() -> None:
    a = idioms.generate_snippets(7, 20_000)
    b = idioms.generate_snippets(7, 20_000)
    c = idioms.generate_snippets(8, 20_000)
    assert a == b
    assert a != c
    # A prefix of a longer run is the shorter run (snippets are drawn one after another).
    longer = idioms.generate_snippets(7, 40_000)
    assert longer.startswith(a.rstrip("\n"))


def test_does_not_touch_global_random_state() -> None:
    random.seed(1)
    state = random.getstate()
    first = idioms.generate_snippets(3, 5_000)
    assert random.getstate() == state
    random.seed(999)
    assert idioms.generate_snippets(3, 5_000) == first


def test_length_is_at_least_requested_and_close_to_it() -> None:
    for n in (1, 100, 5_000, 50_000):
        text = idioms.generate_snippets(0, n)
        assert len(text) >= n
        assert len(text) < n + 1_000  # overshoots by at most one snippet
        assert text.endswith("\n")
    assert idioms.generate_snippets(0, 0) == ""


def test_printable_ascii_and_newline_only(corpus: str) -> None:
    assert "\t" not in corpus
    bad = {ch for ch in corpus if not (ch == "\n" or 32 <= ord(ch) < 127)}
    assert not bad
    # four-space indentation, no trailing whitespace
    for line in corpus.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 4 == 0, line
        assert line == line.rstrip(), line


def test_snippets_separated_by_blank_lines(corpus: str) -> None:
    assert "\n\n" in corpus
    assert "\n\n\n" not in corpus


def test_covers_the_task_behaviours(corpus: str) -> None:
    for needle in ("]]", ".add(", " += ", "with open(", "lambda ", "enumerate(", "elif ", 'f"', "f'",
                   "==", "set()", "def __init__(self, ", "self.", " if ", " else ", "while True:",
                   "return ", "range(", "=None", "[[", ": ", "as f:", "f = open("):
        assert needle in corpus, needle
    assert corpus.count('"') > 500 and corpus.count("'") > 500
    assert re.search(r"^(\w+), (\w+) = \2, \1$", corpus, re.M), "no a, b = b, a swap"
    assert re.search(r"^ {8}\S", corpus, re.M), "no doubly indented lines"
    assert re.search(r"\{\s*[\"']\w+[\"']: ", corpus), "no dict literal with string keys"
    assert re.search(r"\[[\"']\w+[\"'], ", corpus), "no list starting with a string"


def test_many_templates_each_valid_python() -> None:
    assert len(idioms.TEMPLATE_NAMES) >= 25
    assert len(set(idioms.TEMPLATE_NAMES)) == len(idioms.TEMPLATE_NAMES)
    rng = random.Random(0)
    for name in idioms.TEMPLATE_NAMES:
        seen = set()
        for _ in range(25):
            snippet = idioms.generate_snippet(rng, template=name)
            ast.parse(snippet)  # raises on a syntax error
            seen.add(snippet)
        assert len(seen) > 5, f"template {name} has too little variety"


def test_random_snippets_are_short_valid_python() -> None:
    rng = random.Random(42)
    for _ in range(2_000):
        snippet = idioms.generate_snippet(rng)
        n_lines = snippet.count("\n") + 1
        assert 1 <= n_lines <= 12, snippet
        assert not snippet.endswith("\n")
        ast.parse(snippet)


def test_unknown_template_name() -> None:
    with pytest.raises(ValueError, match="unknown idiom template"):
        idioms.generate_snippet(random.Random(0), template="no_such_template")


def test_file_modes_follow_file_names(corpus: str) -> None:
    pattern = re.compile(r"open\((['\"])(\w+\.\w+)\1(?:, (['\"])(\w+)\3)?")
    checked = 0
    for m in pattern.finditer(corpus):
        name, mode = m.group(2), m.group(4)
        if name in names.READ_FILES:
            assert mode in (None, "r", "rb"), m.group(0)
        else:
            assert name in names.WRITE_FILES, m.group(0)
            assert mode in ("w", "a", "wb"), m.group(0)
        checked += 1
    assert checked > 100


def test_set_and_string_accumulators_are_used_consistently() -> None:
    rng = random.Random(5)
    n_set = n_str = 0
    for _ in range(300):
        s = idioms.generate_snippet(rng, template="set_add")
        name = re.search(r"(\w+) = set\(\)", s).group(1)
        assert f"{name}.add(" in s and f"{name} +=" not in s
        n_set += 1
        s = idioms.generate_snippet(rng, template="string_concat")
        name = re.search(r"(\w+) = (['\"])\2", s).group(1)
        assert f"{name} += " in s and f"{name}.add(" not in s
        n_str += 1
    assert n_set == n_str == 300


def test_class_init_copies_parameters() -> None:
    rng = random.Random(9)
    for _ in range(100):
        s = idioms.generate_snippet(rng, template="class_init")
        init = next(n for n in ast.walk(ast.parse(s)) if isinstance(n, ast.FunctionDef))
        assert init.name == "__init__"
        params = [a.arg for a in init.args.args]
        assert params[0] == "self" and len(params) >= 2
        for name in params[1:]:
            assert f"self.{name} = {name}" in s


def test_throughput_at_least_one_megabyte_per_second() -> None:
    start = time.perf_counter()
    text = idioms.generate_snippets(11, 1_000_000)
    elapsed = time.perf_counter() - start
    assert len(text) >= 1_000_000
    assert elapsed < 1.0, f"{len(text) / elapsed / 1e6:.2f} MB/s"
